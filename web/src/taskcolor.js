// Stable task colours: a task's hue comes from its name alone, so "Project X" has the same
// colour on every page, machine and day, and the next reload. The scheme (light or dark)
// picks lightness in CSS from the hue in `--hue`.

/** FNV-1a over the UTF-16 code units: small, fast, well spread for short names. */
function hash(text) {
  let x = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    x ^= text.charCodeAt(i);
    x = Math.imul(x, 0x01000193);
  }
  return x >>> 0;
}

/** The hue (0-359) of a task; "" (no task) has none and is drawn neutral. */
export function taskHue(task) {
  if (!task) return null;
  // golden-angle steps keep neighbouring hashes apart on the colour wheel
  return Math.round((hash(task) * 137.508) % 360);
}

/** What colours an element for `task`: class `tc` with the hue variable, or `no-task`. */
export function taskStyle(task) {
  const hue = taskHue(task);
  return hue === null ? { class: "no-task", style: "" } : { class: "tc", style: `--hue: ${hue}` };
}

/** What to call a task on screen. */
export function taskName(task) {
  return task || "(no task)";
}
