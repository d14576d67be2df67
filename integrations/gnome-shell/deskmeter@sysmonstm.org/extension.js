// Deskmeter in the GNOME Shell top panel: the current task of this machine, pushed from the
// sysmonstm gateway's WebSocket (never polled). On Wayland, where window-manager hints
// (EWMH) are out of reach of the X11 watcher, the extension is the machine's watcher: it
// reports workspace switches, idleness and heartbeats to POST /api/v1/deskmeter/events.
//
// The message logic lives in protocol.js (no gi imports, tested under node against a real
// gateway); this file wires it to St, Soup 3, Meta and GLib timers.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Meta from 'gi://Meta';
import Soup from 'gi://Soup?version=3.0';
import St from 'gi://St';
import Clutter from 'gi://Clutter';

import {Extension} from 'resource:///org/gnome/shell/extensions/extension.js';
import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import * as PanelMenu from 'resource:///org/gnome/shell/ui/panelMenu.js';
import * as PopupMenu from 'resource:///org/gnome/shell/ui/popupMenu.js';

import * as Protocol from './protocol.js';

const WM_PREFERENCES = 'org.gnome.desktop.wm.preferences';
const STATE_DIR = GLib.build_filenamev([GLib.get_user_state_dir(), 'deskmeter-gnome']);

function readText(path) {
    try {
        const [ok, bytes] = GLib.file_get_contents(path);
        return ok ? new TextDecoder().decode(bytes).trim() : '';
    } catch {
        return '';
    }
}

function writeText(path, text) {
    GLib.mkdir_with_parents(GLib.path_get_dirname(path), 0o700);
    GLib.file_set_contents(path, text);
}

/** The machine id the X11 watcher would use: the setting, /etc/machine-id, else one kept. */
function machineId(settings) {
    const explicit = settings.get_string('machine-id').trim();
    if (explicit)
        return explicit;
    const system = readText('/etc/machine-id');
    if (system)
        return system;
    const kept = GLib.build_filenamev([STATE_DIR, 'machine-id']);
    let made = readText(kept);
    if (!made) {
        made = GLib.uuid_string_random().replace(/-/g, '');
        writeText(kept, `${made}\n`);
    }
    return made;
}

function localZone() {
    const id = GLib.TimeZone.new_local().get_identifier();
    return id && /^[A-Za-z_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(id) ? id : 'UTC';
}

/** The gateway over Soup: one WebSocket (reconnecting with backoff) and plain requests. */
class GatewayLink {
    constructor(gateway, onOpen, onMessage, onClosed) {
        this.gateway = gateway;
        this._onOpen = onOpen;
        this._onMessage = onMessage;
        this._onClosed = onClosed;
        this._session = new Soup.Session({timeout: 10});
        this._cancellable = new Gio.Cancellable();
        this._connection = null;
        this._retry = 0;
        this._attempt = 0;
    }

    start() {
        const message = Soup.Message.new('GET', Protocol.wsUrl(this.gateway));
        this._session.websocket_connect_async(message, null, [], GLib.PRIORITY_DEFAULT,
            this._cancellable, (session, result) => {
                try {
                    this._connection = session.websocket_connect_finish(result);
                } catch (e) {
                    if (!this._cancellable.is_cancelled())
                        this._reconnect();
                    return;
                }
                this._attempt = 0;
                this._connection.set_keepalive_interval(30);
                this._connection.connect('message', (_c, type, bytes) => {
                    if (type !== Soup.WebsocketDataType.TEXT)
                        return;
                    try {
                        this._onMessage(JSON.parse(new TextDecoder().decode(bytes.toArray())));
                    } catch (e) {
                        logError(e, 'Deskmeter: unreadable message');
                    }
                });
                this._connection.connect('closed', () => {
                    this._connection = null;
                    this._onClosed();
                    if (!this._cancellable.is_cancelled())
                        this._reconnect();
                });
                this._onOpen(this._connection);
            });
    }

    _reconnect() {
        const delay = Protocol.backoffMs(this._attempt++);
        this._retry = GLib.timeout_add(GLib.PRIORITY_DEFAULT, Math.max(delay, 50), () => {
            this._retry = 0;
            this.start();
            return GLib.SOURCE_REMOVE;
        });
    }

    send(text) {
        if (this._connection && this._connection.get_state() === Soup.WebsocketState.OPEN)
            this._connection.send_text(text);
    }

    /** ``callback(status, parsedBodyOrNull)``; status 0 when there was no answer. */
    request(method, url, body, callback) {
        const message = Soup.Message.new(method, url);
        if (body !== null) {
            const bytes = new GLib.Bytes(new TextEncoder().encode(JSON.stringify(body)));
            message.set_request_body_from_bytes('application/json', bytes);
        }
        this._session.send_and_read_async(message, GLib.PRIORITY_DEFAULT, this._cancellable,
            (session, result) => {
                let status = 0, parsed = null;
                try {
                    const bytes = session.send_and_read_finish(result);
                    status = message.get_status();
                    parsed = JSON.parse(new TextDecoder().decode(bytes.toArray()));
                } catch {
                    // no answer, or not JSON: status says which
                }
                if (!this._cancellable.is_cancelled())
                    callback(status, parsed);
            });
    }

    destroy() {
        this._cancellable.cancel();
        if (this._retry)
            GLib.source_remove(this._retry);
        this._retry = 0;
        if (this._connection && this._connection.get_state() === Soup.WebsocketState.OPEN)
            this._connection.close(Soup.WebsocketCloseCode.GOING_AWAY, null);
        this._connection = null;
        this._session.abort();
    }
}

/** Wayland: the desktop's workspace and idleness to ``DeskReporter``, batches to the gateway. */
class WaylandWatcher {
    constructor(link, settings, machine, task) {
        this._link = link;
        this._wm = global.workspace_manager;
        this._idle = global.backend.get_core_idle_monitor();
        this._wmPrefs = new Gio.Settings({schema_id: WM_PREFERENCES});
        this._seqFile = GLib.build_filenamev([STATE_DIR, 'sequence']);
        this._taskFile = GLib.build_filenamev([STATE_DIR, 'task']);
        this._heartbeatMs = settings.get_uint('heartbeat-seconds') * 1000;
        this.reporter = new Protocol.DeskReporter({
            machine,
            host: GLib.get_host_name(),
            timeZone: localZone(),
            heartbeatMs: this._heartbeatMs,
            idleAfterMs: settings.get_uint('idle-after-seconds') * 1000,
            sequences: new Protocol.SequenceKeeper(Number(readText(this._seqFile)) || 0),
            task: readText(this._taskFile) || task,
        });
        this._sending = false;
        this._attempt = 0;
        this._retry = 0;
        this._idleWatch = 0;
        this._activeWatch = 0;
        this._signals = [
            [this._wm, this._wm.connect('active-workspace-changed', () => this._observe())],
            [this._wmPrefs, this._wmPrefs.connect('changed::workspace-names',
                () => this._observe())],
        ];
        this._armIdle();
        this._timer = GLib.timeout_add(GLib.PRIORITY_DEFAULT, this._heartbeatMs, () => {
            this.reporter.tick(Date.now(), this._idle.get_idletime());
            this._flush();
            return GLib.SOURCE_CONTINUE;
        });
        this._observe();
    }

    _armIdle() {
        this._idleWatch = this._idle.add_idle_watch(this.reporter.idleAfterMs, () => {
            this._observe();
            // back at the first input, not at the next heartbeat (the watch fires once)
            this._activeWatch = this._idle.add_user_active_watch(() => {
                this._activeWatch = 0;
                this._observe();
            });
        });
    }

    _observe() {
        const index = this._wm.get_active_workspace_index();
        const names = this._wmPrefs.get_strv('workspace-names');
        this.reporter.observe(Date.now(),
            {index, name: names[index] ?? '', idleMs: this._idle.get_idletime()});
        this._flush();
    }

    setTask(task) {
        writeText(this._taskFile, task);
        this.reporter.setTask(task, Date.now(), this._idle.get_idletime());
        this._flush();
    }

    _flush() {
        const mark = this.reporter.seal();
        if (mark !== null)
            writeText(this._seqFile, String(mark)); // before any sequence of the block is sent
        this._sendHead();
    }

    _sendHead() {
        const batch = this.reporter.head();
        if (this._sending || this._retry || batch === null)
            return;
        this._sending = true;
        this._link.request('POST', Protocol.eventsUrl(this._link.gateway), batch, status => {
            this._sending = false;
            const outcome = this.reporter.answered(status);
            if (outcome === 'refused')
                log(`Deskmeter: the gateway refused batch ${batch.sequence} (${status})`);
            if (outcome === 'retry') {
                const delay = Math.max(Protocol.backoffMs(this._attempt++), 200);
                this._retry = GLib.timeout_add(GLib.PRIORITY_DEFAULT, delay, () => {
                    this._retry = 0;
                    this._sendHead();
                    return GLib.SOURCE_REMOVE;
                });
                return;
            }
            this._attempt = 0;
            this._sendHead();
        });
    }

    destroy() {
        for (const [object, id] of this._signals)
            object.disconnect(id);
        for (const id of [this._idleWatch, this._activeWatch]) {
            if (id)
                this._idle.remove_watch(id);
        }
        GLib.source_remove(this._timer);
        if (this._retry)
            GLib.source_remove(this._retry);
        this._signals = [];
    }
}

export default class DeskmeterExtension extends Extension {
    enable() {
        this._settings = this.getSettings();
        const gateway = this._settings.get_string('gateway');
        this._machine = machineId(this._settings);
        const reporting = Meta.is_wayland_compositor() &&
            this._settings.get_boolean('report-on-wayland');
        this._state = new Protocol.PanelState(this._machine);

        this._button = new PanelMenu.Button(0.0, 'Deskmeter');
        this._label = new St.Label({text: this._state.text, y_align: Clutter.ActorAlign.CENTER});
        this._button.add_child(this._label);
        this._details = new PopupMenu.PopupMenuItem(this._state.details, {reactive: false});
        this._button.menu.addMenuItem(this._details);
        this._button.menu.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());
        this._button.menu.addAction('Open the calendar', () =>
            Gio.AppInfo.launch_default_for_uri(`${Protocol.httpBase(gateway)}/`, null));
        this._button.menu.addAction('Settings', () => this.openPreferences());
        Main.panel.addToStatusArea(this.uuid, this._button);

        this._link = new GatewayLink(gateway, connection => {
            this._state.connected = true;
            connection.send_text(Protocol.subscribeRequest(this._machine, {reporting}));
            // what happened while away: read once per connect, then follow the pushes
            this._link.request('GET', Protocol.currentUrl(gateway, this._machine), null,
                (status, body) => {
                    if (status === 200 && body !== null && this._state.applyCurrent(body))
                        this._render();
                });
            this._render();
        }, message => {
            const change = this._state.applyMessage(message);
            if (change === 'task' && this._watcher)
                this._watcher.setTask(this._state.pendingTask);
            if (change === 'current')
                this._render();
        }, () => {
            this._state.connected = false;
            this._render();
        });
        this._watcher = reporting ? new WaylandWatcher(this._link, this._settings,
            this._machine, '') : null;
        // a watcher that stops sending leaves a stale label: drop it once it is overdue
        this._expiry = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 5, () => {
            if (this._state.expire(Date.now()))
                this._render();
            return GLib.SOURCE_CONTINUE;
        });
        this._link.start();
    }

    _render() {
        this._label.text = this._state.text;
        this._details.label.text = this._state.details;
    }

    disable() {
        GLib.source_remove(this._expiry);
        this._watcher?.destroy();
        this._link.destroy();
        this._button.destroy();
        this._watcher = null;
        this._link = null;
        this._button = null;
        this._label = null;
        this._details = null;
        this._state = null;
        this._settings = null;
    }
}
