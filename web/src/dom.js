// A tiny element builder: h("div", {class: "x", dataset: {host: id}}, "text", child).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Set text only when it changed (keeps style recalculation away from unchanged nodes). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Label chips for a host's labels. */
export function labelChips(labels) {
  return Object.entries(labels || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => h("span", { class: "chip" }, `${k}=${v}`));
}

/** A value cell: `<span data-metric=key>12.3</span><span class=unit>%</span>`. */
export function valueCell(attrs) {
  const value = h("span", { class: "value", ...attrs }, "–");
  const unit = h("span", { class: "unit" });
  return { el: h("span", { class: "reading" }, value, unit), value, unit };
}
