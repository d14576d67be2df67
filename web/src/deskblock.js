// One task block: an interval's piece within a day, coloured by task, positioned by the
// caller (a time grid places it vertically, a month strip horizontally).

import { h } from "./dom.js";
import { formatDuration } from "./deskformat.js";
import { taskName, taskStyle } from "./taskcolor.js";
import { clockText } from "./tz.js";

/** The text a block shows on hover: task, workspace, machine, times, duration. */
export function blockTitle(piece, tz, hostOf) {
  const { iv } = piece;
  const where = [iv.workspace && `workspace ${iv.workspace}`, hostOf(iv.machine)].filter(Boolean);
  const span = `${clockText(piece.start, tz)}–${iv.open ? "now" : clockText(piece.end, tz)}`;
  const state = iv.idle ? " · idle" : "";
  return `${taskName(iv.task)}${state}\n${where.join(" · ")}\n${span} · ${formatDuration(
    (piece.end - piece.start) / 1000,
  )}`;
}

/**
 * A block element for `piece` with `pos` (CSS: top/height or left/width percentages).
 * Data attributes carry what it stands for (machine, task, start/end ms, idle, open).
 */
export function blockEl(piece, tz, hostOf, pos, { label = true } = {}) {
  const { iv } = piece;
  const colour = taskStyle(iv.task);
  const classes = ["dm-block", colour.class, iv.idle && "idle", iv.open && "open"];
  const name = iv.idle ? `${taskName(iv.task)} · idle` : taskName(iv.task);
  return h(
    "div",
    {
      class: classes.filter(Boolean).join(" "),
      style: [colour.style, pos].filter(Boolean).join("; "),
      title: blockTitle(piece, tz, hostOf),
      dataset: {
        machine: iv.machine,
        task: iv.task,
        workspace: iv.workspace,
        start: piece.start,
        end: piece.end,
        idle: iv.idle ? "1" : "0",
        open: iv.open ? "1" : "0",
      },
    },
    label ? h("span", { class: "dm-block-task" }, name) : null,
    label && iv.workspace ? h("span", { class: "dm-block-ws" }, iv.workspace) : null,
  );
}
