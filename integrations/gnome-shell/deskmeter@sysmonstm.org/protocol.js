// Deskmeter's protocol for the GNOME Shell extension: URLs, the WebSocket subscription, the
// panel's state and label, and (on Wayland) the events the extension reports itself.
//
// No gi imports here on purpose: this module holds every decision the extension makes about
// messages, so it runs unchanged under GNOME Shell (GJS) and under node, where the tests
// drive it against a real gateway. extension.js only wires it to St, Soup, Meta and timers.
//
// Contracts: docs/deskmeter.md ("Bus" for pushed payloads, "REST" for /current and
// POST /events) and src/sysmonstm/gateway/ws.py (the /ws protocol).

export const HEARTBEAT_MS = 10_000;
export const IDLE_AFTER_MS = 300_000;
export const SEQUENCE_BLOCK = 1000;
export const MAX_QUEUED_BATCHES = 1000;
export const MAX_EVENTS_PER_BATCH = 500;

/** ``text`` made safe as one topic token (as sysmonstm.events.topics.topic_token does). */
export function topicToken(text) {
    const token = String(text).replace(/[\s.*>]/g, '_');
    return token || '_';
}

/** ``http://host:port`` (a bare ``host:port`` means http) without a trailing slash. */
export function httpBase(gateway) {
    let base = String(gateway).trim();
    if (!base.includes('://'))
        base = `http://${base}`;
    return base.replace(/\/+$/, '');
}

/** The gateway's WebSocket: ``ws://host:port/ws`` (``wss`` for https). */
export function wsUrl(gateway) {
    return `${httpBase(gateway).replace(/^http(s?):\/\//, 'ws$1://')}/ws`;
}

/** ``GET /api/v1/deskmeter/current`` of one machine. */
export function currentUrl(gateway, machine) {
    return `${httpBase(gateway)}/api/v1/deskmeter/current?machine=${encodeURIComponent(machine)}`;
}

/** ``POST /api/v1/deskmeter/events``. */
export function eventsUrl(gateway) {
    return `${httpBase(gateway)}/api/v1/deskmeter/events`;
}

/** The topics the panel follows; on Wayland also the task topic (the extension then is the
 * machine's watcher and applies task changes itself). */
export function topics(machine, {reporting = false} = {}) {
    const token = topicToken(machine);
    const wanted = [`workspace.switch.${token}`, `workspace.heartbeat.${token}`];
    if (reporting)
        wanted.push(`deskmeter.task.${machine}`);
    return wanted;
}

/** The first frame sent on every (re)connect. */
export function subscribeRequest(machine, options = {}) {
    return JSON.stringify({subscribe: topics(machine, options)});
}

/** ``5400`` → ``"1h 30m"``, ``59`` → ``"0m"``, ``600`` → ``"10m"``. */
export function formatDuration(seconds) {
    const minutes = Math.max(0, Math.floor(seconds / 60));
    const hours = Math.floor(minutes / 60);
    if (hours === 0)
        return `${minutes}m`;
    return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/**
 * What the panel shows for one machine: the open interval, kept from /current and from
 * pushed switches and heartbeats. Pushes older than what was applied are ignored (a
 * reconnect's /current may cross a push in flight).
 */
export class PanelState {
    constructor(machine) {
        this.machine = machine;
        this.current = null; // {workspace, workspace_index, task, idle, start_ms, duration_s}
        this.asOf = -1; // time_ms of what ``current`` describes
        this.connected = false;
    }

    /** Take a ``GET /current`` body. Returns whether the label may have changed. */
    applyCurrent(body) {
        const list = body && Array.isArray(body.current) ? body.current : null;
        if (list === null)
            throw new Error('GET /current answered without a "current" list');
        const mine = list.find(iv => iv && iv.machine === this.machine) ?? null;
        const asOf = Number.isInteger(body.time_ms) ? body.time_ms : 0;
        if (mine === null) {
            if (asOf < this.asOf)
                return false;
            this.current = null;
            this.asOf = asOf;
            return true;
        }
        const endMs = mine.end_ms ?? mine.start_ms;
        if (endMs < this.asOf)
            return false;
        this.current = {
            workspace: String(mine.workspace ?? ''),
            workspace_index: mine.workspace_index ?? 0,
            task: String(mine.task ?? ''),
            idle: Boolean(mine.idle),
            start_ms: mine.start_ms,
            duration_s: Number(mine.duration_s ?? 0),
        };
        this.asOf = endMs;
        return true;
    }

    /**
     * Take one message from /ws (already parsed). Returns ``"current"`` when the open
     * interval changed, ``"task"`` (with ``this.pendingTask`` set) for a task set through
     * the gateway, or ``null`` (replies, drop notices, other machines, stale pushes).
     */
    applyMessage(message) {
        if (!message || typeof message.topic !== 'string' || typeof message.payload !== 'object')
            return null;
        const p = message.payload;
        if (!p || p.machine !== this.machine)
            return null;
        if (message.topic.startsWith('deskmeter.task.')) {
            if (typeof p.task !== 'string')
                return null;
            this.pendingTask = p.task;
            return 'task';
        }
        if (!message.topic.startsWith('workspace.') || !Number.isInteger(p.time_ms))
            return null;
        if (p.time_ms < this.asOf)
            return null;
        const cur = p.current ?? {};
        this.current = {
            workspace: String(p.workspace ?? ''),
            workspace_index: p.workspace_index ?? 0,
            task: String(p.task ?? ''),
            idle: Boolean(p.idle),
            start_ms: cur.start_ms ?? p.time_ms,
            duration_s: Number(cur.duration_s ?? 0),
        };
        this.asOf = p.time_ms;
        return 'current';
    }

    /**
     * Forget an open interval nothing has been heard of for two heartbeats and 5 s (the
     * aggregator closes it then: its watcher is gone). Returns whether the label changed.
     */
    expire(nowMs, heartbeatMs = HEARTBEAT_MS) {
        if (this.current === null || nowMs - this.asOf <= 2 * heartbeatMs + 5000)
            return false;
        this.current = null;
        return true;
    }

    /** The panel label: the task (else the workspace) and how long it has lasted. */
    get text() {
        const c = this.current;
        if (c === null)
            return this.connected ? 'Deskmeter' : 'Deskmeter · offline';
        if (c.idle)
            return `Idle · ${formatDuration(c.duration_s)}`;
        const what = c.task || c.workspace || `Workspace ${c.workspace_index + 1}`;
        return `${what} · ${formatDuration(c.duration_s)}`;
    }

    /** Details for the menu: workspace, task, since when. */
    get details() {
        const c = this.current;
        if (c === null)
            return 'No open interval on this machine';
        const task = c.task ? `task ${c.task}` : 'no task';
        return `${c.workspace || `Workspace ${c.workspace_index + 1}`} · ${task}${c.idle ? ' · idle' : ''}`;
    }
}

/**
 * Batch sequences that grow across restarts without writing on every batch: a block of
 * ``block`` numbers is reserved (persisted) before the first of them is used, so after a
 * crash the next run starts above anything sent (gaps are fine; going back is not).
 */
export class SequenceKeeper {
    /** ``reserved``: the persisted high mark (0 on the first run). */
    constructor(reserved, block = SEQUENCE_BLOCK) {
        this.reserved = Math.max(0, Math.floor(Number(reserved) || 0));
        this.last = this.reserved;
        this.block = block;
    }

    /** The next sequence and, when a new block must be persisted first, its high mark. */
    next() {
        let persist = null;
        if (this.last >= this.reserved) {
            this.reserved = this.last + this.block;
            persist = this.reserved;
        }
        this.last += 1;
        return {sequence: this.last, persist};
    }
}

/**
 * The Wayland reporter: the desktop's state in, the events the watcher contract asks for
 * out — a SWITCH on every change of workspace, task or idle state, a HEARTBEAT every
 * ``heartbeatMs`` while nothing changes — sealed into ``POST /events`` bodies. A batch is
 * retried unchanged (same sequence) until the gateway answers; a replay is harmless.
 */
export class DeskReporter {
    constructor({machine, host, timeZone, heartbeatMs = HEARTBEAT_MS,
        idleAfterMs = IDLE_AFTER_MS, sequences, task = ''}) {
        this.identity = {machine, host, time_zone: timeZone, heartbeat_ms: heartbeatMs};
        this.heartbeatMs = heartbeatMs;
        this.idleAfterMs = idleAfterMs;
        this.sequences = sequences;
        this.task = task;
        this.state = null; // {workspace_index, workspace, idle}
        this.lastEventMs = -Infinity;
        this.pending = []; // events not yet sealed into a batch
        this.batches = []; // sealed bodies, oldest first
        this.dropped = 0;
    }

    _event(kind, nowMs, idleMs) {
        const t = Math.max(Math.floor(nowMs), this.lastEventMs); // never back in time
        const s = this.state;
        const event = {
            time_ms: t, kind, workspace_index: s.workspace_index, workspace: s.workspace,
            task: this.task, idle: s.idle, idle_ms: Math.max(0, Math.floor(idleMs)),
        };
        this.lastEventMs = t;
        this.pending.push(event);
        return event;
    }

    /** The desktop at ``nowMs``; a SWITCH if anything changed (else ``null``). */
    observe(nowMs, {index, name, idleMs = 0}) {
        const next = {
            workspace_index: Math.max(0, index),
            workspace: String(name ?? ''),
            idle: idleMs >= this.idleAfterMs,
        };
        const s = this.state;
        if (s !== null && s.workspace_index === next.workspace_index &&
            s.workspace === next.workspace && s.idle === next.idle)
            return null;
        this.state = next;
        return this._event('switch', nowMs, idleMs);
    }

    /** A task set through the gateway: a SWITCH if it differs (else ``null``). */
    setTask(task, nowMs, idleMs = 0) {
        if (task === this.task)
            return null;
        this.task = task;
        return this.state === null ? null : this._event('switch', nowMs, idleMs);
    }

    /** The heartbeat timer fired: a HEARTBEAT, or a SWITCH when idleness flipped, or
     * ``null`` when nothing is known yet or a switch went out less than half a period ago
     * (so two events are never more than 1.5 periods apart, well inside the aggregator's
     * silence limit of two periods and 5 s). */
    tick(nowMs, idleMs) {
        if (this.state === null)
            return null;
        const idle = idleMs >= this.idleAfterMs;
        if (idle !== this.state.idle) {
            this.state = {...this.state, idle};
            return this._event('switch', nowMs, idleMs);
        }
        if (nowMs - this.lastEventMs < this.heartbeatMs / 2)
            return null;
        return this._event('heartbeat', nowMs, idleMs);
    }

    /**
     * Seal the pending events into a batch (if any). Returns the high mark to persist
     * before the batch is sent, or ``null``.
     */
    seal() {
        let persist = null;
        while (this.pending.length > 0) {
            const events = this.pending.splice(0, MAX_EVENTS_PER_BATCH);
            const {sequence, persist: mark} = this.sequences.next();
            persist = mark ?? persist;
            this.batches.push({...this.identity, sequence, events});
        }
        while (this.batches.length > MAX_QUEUED_BATCHES) {
            this.batches.shift(); // the gateway has been away for hours: keep the newest
            this.dropped += 1;
        }
        return persist;
    }

    /** The batch to send next (``null`` when all are sent). */
    head() {
        return this.batches.length > 0 ? this.batches[0] : null;
    }

    /**
     * The gateway answered ``status`` for the head batch. Returns ``"sent"`` (2xx: stored
     * or a replay), ``"refused"`` (4xx: the batch can never be stored; it is dropped) or
     * ``"retry"`` (no answer, 5xx: keep it and try again later).
     */
    answered(status) {
        if (status >= 200 && status < 300) {
            this.batches.shift();
            return 'sent';
        }
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
            this.batches.shift();
            this.dropped += 1;
            return 'refused';
        }
        return 'retry';
    }
}

/** Exponential backoff with full jitter: the delay before reconnect attempt ``attempt``. */
export function backoffMs(attempt, {initialMs = 200, maxMs = 10_000, random = Math.random} = {}) {
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt));
    return Math.floor(random() * ceiling);
}
