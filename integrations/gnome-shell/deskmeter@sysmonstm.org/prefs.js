// Deskmeter's preferences: the gateway, the machine id, and what the extension reports on
// Wayland. Values live in the extension's GSettings schema (schemas/); the extension reads
// them when it is enabled (toggle it, or log out and in, after a change).

import Adw from 'gi://Adw';
import Gio from 'gi://Gio';
import Gtk from 'gi://Gtk';

import {ExtensionPreferences} from 'resource:///org/gnome/Shell/Extensions/js/extensions/prefs.js';

export default class DeskmeterPreferences extends ExtensionPreferences {
    fillPreferencesWindow(window) {
        const settings = this.getSettings();
        const page = new Adw.PreferencesPage({title: 'Deskmeter'});

        const where = new Adw.PreferencesGroup({
            title: 'Gateway',
            description: 'The sysmonstm gateway that pushes this machine\'s current task.',
        });
        const gateway = new Adw.EntryRow({title: 'Gateway URL'});
        settings.bind('gateway', gateway, 'text', Gio.SettingsBindFlags.DEFAULT);
        where.add(gateway);
        const machine = new Adw.EntryRow({title: 'Machine id (empty: /etc/machine-id)'});
        settings.bind('machine-id', machine, 'text', Gio.SettingsBindFlags.DEFAULT);
        where.add(machine);
        page.add(where);

        const wayland = new Adw.PreferencesGroup({
            title: 'Wayland',
            description: 'Without EWMH the X11 watcher cannot see workspaces; the extension ' +
                'reports them instead.',
        });
        const report = new Adw.SwitchRow({title: 'Report workspace switches'});
        settings.bind('report-on-wayland', report, 'active', Gio.SettingsBindFlags.DEFAULT);
        wayland.add(report);
        wayland.add(this._seconds(settings, 'heartbeat-seconds', 'Heartbeat every (s)', 1, 3600));
        wayland.add(this._seconds(settings, 'idle-after-seconds', 'Idle after (s)', 10, 86400));
        page.add(wayland);

        window.add(page);
    }

    _seconds(settings, key, title, lower, upper) {
        const row = new Adw.SpinRow({
            title,
            adjustment: new Gtk.Adjustment({lower, upper, step_increment: 1}),
        });
        settings.bind(key, row, 'value', Gio.SettingsBindFlags.DEFAULT);
        return row;
    }
}
