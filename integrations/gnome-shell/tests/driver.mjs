// Drives protocol.js under node against a real gateway, as extension.js does under GNOME
// Shell: node's built-in WebSocket and fetch stand in for Soup, the test's commands stand in
// for Meta's signals and GLib's timers.
//
// stdin: one JSON command a line; stdout: one JSON line per thing that happened.
//   {"op": "panel", "gateway", "machine", "reporting"}  follow /ws (subscribe, then read
//       /current once per connect) → {"label", "details"} on every change, {"fetch": url}
//       for every REST read, {"task": t} for a task pushed to this machine
//   {"op": "reporter", "machine", "host", "time_zone", "reserved", "heartbeat_ms",
//       "idle_after_ms"}                                create the Wayland reporter
//   {"op": "observe", "now_ms", "index", "name", "idle_ms"}   a workspace/idle change
//   {"op": "tick", "now_ms", "idle_ms"}                  the heartbeat timer
//   {"op": "flush"}                                      seal and send every batch
// Every command ends with {"done": op}. Sending emits {"persist": mark} before a new block
// of sequences is used and {"sent": sequence, "status", "outcome"} per answer.

import readline from 'node:readline';
import {pathToFileURL} from 'node:url';

const Protocol = await import(pathToFileURL(process.argv[2]).href);

function emit(value) {
    process.stdout.write(`${JSON.stringify(value)}\n`);
}

let panel = null;
let reporter = null;
let gateway = '';

async function flush() {
    const mark = reporter.seal();
    if (mark !== null)
        emit({persist: mark});
    for (let batch = reporter.head(); batch !== null; batch = reporter.head()) {
        let status = 0;
        try {
            const response = await fetch(Protocol.eventsUrl(gateway), {
                method: 'POST',
                headers: {'content-type': 'application/json'},
                body: JSON.stringify(batch),
            });
            status = response.status;
            await response.text();
        } catch {
            status = 0; // no answer
        }
        const outcome = reporter.answered(status);
        emit({sent: batch.sequence, status, outcome});
        if (outcome === 'retry')
            return;
    }
}

function follow(machine, reporting) {
    panel = new Protocol.PanelState(machine);
    const show = () => emit({label: panel.text, details: panel.details});
    const socket = new WebSocket(Protocol.wsUrl(gateway));
    socket.addEventListener('open', async () => {
        panel.connected = true;
        socket.send(Protocol.subscribeRequest(machine, {reporting}));
        const url = Protocol.currentUrl(gateway, machine);
        emit({fetch: url});
        const response = await fetch(url);
        if (response.status === 200 && panel.applyCurrent(await response.json()))
            show();
    });
    socket.addEventListener('message', async event => {
        const message = JSON.parse(event.data);
        if (message.ok)
            emit({subscribed: message.ok.subscribed});
        const change = panel.applyMessage(message);
        if (change === 'current')
            show();
        if (change === 'task') {
            emit({task: panel.pendingTask});
            if (reporter !== null && reporter.setTask(panel.pendingTask, Date.now()) !== null)
                await flush();
        }
    });
    socket.addEventListener('close', () => {
        panel.connected = false;
        emit({closed: true});
    });
    return socket;
}

let socket = null;
const lines = readline.createInterface({input: process.stdin});
for await (const line of lines) {
    const cmd = JSON.parse(line);
    if (cmd.op === 'panel') {
        gateway = cmd.gateway;
        socket = follow(cmd.machine, Boolean(cmd.reporting));
    } else if (cmd.op === 'reporter') {
        gateway = cmd.gateway ?? gateway;
        reporter = new Protocol.DeskReporter({
            machine: cmd.machine,
            host: cmd.host,
            timeZone: cmd.time_zone,
            heartbeatMs: cmd.heartbeat_ms,
            idleAfterMs: cmd.idle_after_ms,
            sequences: new Protocol.SequenceKeeper(cmd.reserved ?? 0),
        });
    } else if (cmd.op === 'observe') {
        reporter.observe(cmd.now_ms, {index: cmd.index, name: cmd.name, idleMs: cmd.idle_ms});
        await flush();
    } else if (cmd.op === 'tick') {
        reporter.tick(cmd.now_ms, cmd.idle_ms);
        await flush();
    } else if (cmd.op === 'flush') {
        await flush();
    }
    emit({done: cmd.op});
}
socket?.close();
