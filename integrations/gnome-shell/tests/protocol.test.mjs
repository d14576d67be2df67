// Unit tests of protocol.js (node --test): the pure decisions, one behaviour each. The
// behaviour against a real gateway is in tests/deskmeter/test_gnome_extension.py.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import * as P from '../deskmeter@sysmonstm.org/protocol.js';

const M = 'm-1a2b';

test('URLs are derived from the gateway setting, with or without a scheme', () => {
    assert.equal(P.wsUrl('http://127.0.0.1:8080/'), 'ws://127.0.0.1:8080/ws');
    assert.equal(P.wsUrl('https://desk.example'), 'wss://desk.example/ws');
    assert.equal(P.wsUrl('127.0.0.1:8080'), 'ws://127.0.0.1:8080/ws');
    assert.equal(P.currentUrl('h:1', 'a b'), 'http://h:1/api/v1/deskmeter/current?machine=a%20b');
    assert.equal(P.eventsUrl('http://h:1'), 'http://h:1/api/v1/deskmeter/events');
});

test('the subscription names this machine\'s switch and heartbeat topics', () => {
    assert.deepEqual(JSON.parse(P.subscribeRequest('m.1 x')), {
        subscribe: ['workspace.switch.m_1_x', 'workspace.heartbeat.m_1_x'],
    });
    assert.deepEqual(P.topics(M, {reporting: true}).at(-1), `deskmeter.task.${M}`);
    assert.equal(P.topicToken(''), '_');
});

test('durations read as minutes, then hours and minutes', () => {
    assert.deepEqual([0, 59, 60, 3599, 3600, 5400, 36000].map(P.formatDuration),
        ['0m', '0m', '1m', '59m', '1h 00m', '1h 30m', '10h 00m']);
});

function push(topic, payload) {
    return {topic, payload: {machine: M, ...payload}};
}

test('the panel shows the task, else the workspace, else idleness, with the duration', () => {
    const s = new P.PanelState(M);
    assert.equal(s.text, 'Deskmeter · offline');
    s.connected = true;
    assert.equal(s.text, 'Deskmeter');
    const cur = {start_ms: 1000, duration_s: 0};
    assert.equal(s.applyMessage(push(`workspace.switch.${M}`,
        {time_ms: 1000, workspace: 'Code', workspace_index: 0, task: 'X', idle: false,
            current: cur})), 'current');
    assert.equal(s.text, 'X · 0m');
    s.applyMessage(push(`workspace.heartbeat.${M}`, {time_ms: 5000, workspace: 'Code',
        task: '', idle: false, current: {start_ms: 1000, duration_s: 3720}}));
    assert.equal(s.text, 'Code · 1h 02m');
    s.applyMessage(push(`workspace.switch.${M}`, {time_ms: 6000, workspace: '', workspace_index: 3,
        task: '', idle: false, current: {start_ms: 6000, duration_s: 0}}));
    assert.equal(s.text, 'Workspace 4 · 0m');
    s.applyMessage(push(`workspace.switch.${M}`, {time_ms: 7000, workspace: 'Code', idle: true,
        current: {start_ms: 7000, duration_s: 600}}));
    assert.equal(s.text, 'Idle · 10m');
});

test('stale pushes, other machines and non-events change nothing', () => {
    const s = new P.PanelState(M);
    s.applyMessage(push('workspace.switch.x', {time_ms: 10, task: 'new', current: {}}));
    assert.equal(s.applyMessage(push('workspace.switch.x', {time_ms: 9, task: 'old'})), null);
    assert.equal(s.applyMessage({topic: 'workspace.switch.y', payload: {machine: 'y',
        time_ms: 99}}), null);
    assert.equal(s.applyMessage({ok: {subscribed: []}}), null);
    assert.equal(s.applyMessage({dropped: 3}), null);
    assert.equal(s.current.task, 'new');
});

test('/current sets the state unless a newer push was applied', () => {
    const s = new P.PanelState(M);
    const body = {time_ms: 50, current: [{machine: 'other', start_ms: 0, end_ms: 50},
        {machine: M, start_ms: 0, end_ms: 40, duration_s: 40, workspace: 'Mail', task: '',
            idle: false, workspace_index: 1}]};
    assert.equal(s.applyCurrent(body), true);
    assert.equal(s.text, 'Mail · 0m');
    s.applyMessage(push('workspace.switch.x', {time_ms: 60, task: 'T', current: {}}));
    assert.equal(s.applyCurrent(body), false);
    assert.equal(s.applyCurrent({time_ms: 70, current: []}), true);
    assert.equal(s.current, null);
    assert.throws(() => s.applyCurrent({error: {}}), /"current" list/);
});

test('a label is dropped when its watcher has been silent past the silence limit', () => {
    const s = new P.PanelState(M);
    s.applyMessage(push('workspace.heartbeat.x', {time_ms: 1000, task: 'T', current: {}}));
    assert.equal(s.expire(1000 + 25_000), false);
    assert.equal(s.expire(1000 + 25_001), true);
    assert.equal(s.current, null);
});

test('a task pushed to this machine is handed over', () => {
    const s = new P.PanelState(M);
    assert.equal(s.applyMessage({topic: `deskmeter.task.${M}`,
        payload: {machine: M, task: 'Project X', time_ms: 1}}), 'task');
    assert.equal(s.pendingTask, 'Project X');
});

test('sequences grow across restarts, persisting one mark per block', () => {
    const first = new P.SequenceKeeper(0, 3);
    assert.deepEqual([1, 2, 3, 4].map(() => first.next()), [
        {sequence: 1, persist: 3}, {sequence: 2, persist: null}, {sequence: 3, persist: null},
        {sequence: 4, persist: 6},
    ]);
    const restarted = new P.SequenceKeeper(6, 3); // crashed after persisting 6
    assert.deepEqual(restarted.next(), {sequence: 7, persist: 9});
});

function reporter(extra = {}) {
    return new P.DeskReporter({machine: M, host: 'laptop', timeZone: 'Europe/Berlin',
        heartbeatMs: 10_000, idleAfterMs: 300_000,
        sequences: new P.SequenceKeeper(0, 1000), ...extra});
}

test('the reporter sends a switch per change and heartbeats while nothing changes', () => {
    const r = reporter();
    assert.equal(r.tick(0, 0), null, 'nothing known yet');
    assert.equal(r.observe(1000, {index: 0, name: 'Code', idleMs: 0}).kind, 'switch');
    assert.equal(r.observe(2000, {index: 0, name: 'Code', idleMs: 10}), null);
    assert.equal(r.tick(5000, 10), null, 'the switch is younger than half a period');
    assert.equal(r.tick(11_000, 10).kind, 'heartbeat');
    assert.equal(r.observe(12_000, {index: 1, name: 'Mail', idleMs: 0}).workspace, 'Mail');
    const idle = r.tick(400_000, 300_000);
    assert.deepEqual([idle.kind, idle.idle, idle.idle_ms], ['switch', true, 300_000]);
    const back = r.observe(401_000, {index: 1, name: 'Mail', idleMs: 5});
    assert.deepEqual([back.kind, back.idle], ['switch', false]);
    assert.equal(r.setTask('T', 402_000).task, 'T');
    assert.equal(r.setTask('T', 403_000), null);
    assert.equal(r.seal(), 1000);
    assert.deepEqual(r.head(), {machine: M, host: 'laptop', time_zone: 'Europe/Berlin',
        heartbeat_ms: 10_000, sequence: 1, events: r.batches[0].events});
    assert.deepEqual(r.head().events.map(e => [e.time_ms, e.kind, e.workspace, e.idle, e.task]), [
        [1000, 'switch', 'Code', false, ''],
        [11_000, 'heartbeat', 'Code', false, ''],
        [12_000, 'switch', 'Mail', false, ''],
        [400_000, 'switch', 'Mail', true, ''],
        [401_000, 'switch', 'Mail', false, ''],
        [402_000, 'switch', 'Mail', false, 'T'],
    ]);
});

test('event times never go back, even when the clock does', () => {
    const r = reporter();
    r.observe(5000, {index: 0, name: 'A'});
    assert.equal(r.observe(4000, {index: 1, name: 'B'}).time_ms, 5000);
});

test('a batch is retried unchanged until answered, and a refused one is dropped', () => {
    const r = reporter();
    r.observe(1000, {index: 0, name: 'A'});
    r.seal();
    const first = r.head();
    assert.equal(r.answered(0), 'retry');
    assert.equal(r.answered(503), 'retry');
    r.observe(2000, {index: 1, name: 'B'});
    r.seal();
    assert.equal(r.head(), first, 'the same batch, the same sequence');
    assert.equal(r.answered(200), 'sent');
    assert.equal(r.head().sequence, 2);
    assert.equal(r.answered(400), 'refused');
    assert.equal(r.head(), null);
    assert.equal(r.dropped, 1);
});

test('backoff grows to its ceiling with jitter', () => {
    const top = () => 0.999999;
    assert.deepEqual([0, 1, 2, 10].map(a => P.backoffMs(a, {random: top})), [199, 399, 799, 9999]);
    assert.equal(P.backoffMs(3, {random: () => 0}), 0);
});
