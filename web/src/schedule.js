// One clock for every repaint: work marked dirty is flushed at most FLUSH_HZ times a second,
// never while the tab is hidden, and (for charts) only while on screen. A burst of events
// from 100 hosts thus costs one repaint per visible chart per tick, not one per event.

const FLUSH_MS = 400;
const dirty = new Set();
const visibility = new WeakMap();

/** Queue `task.flush()` for the next tick (tasks with `offscreenOk === false` wait to show). */
export function markDirty(task) {
  dirty.add(task);
}

export function forget(task) {
  dirty.delete(task);
}

function tick() {
  if (document.hidden) return;
  for (const task of dirty) {
    if (task.offscreenOk === false && !task.visible) continue;
    dirty.delete(task);
    try {
      task.flush();
    } catch (err) {
      console.error("sysmonstm: repaint failed", err);
    }
  }
}

setInterval(tick, FLUSH_MS);
document.addEventListener("visibilitychange", tick);

const observer = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const task = visibility.get(entry.target);
      if (!task) continue;
      task.visible = entry.isIntersecting;
      if (task.visible) {
        if (task.onShow) task.onShow();
        if (dirty.has(task)) {
          dirty.delete(task);
          task.flush();
        }
      }
    }
  },
  { rootMargin: "200px 0px" },
);

/** Track whether `el` is on screen (with a margin) in `task.visible`; call `task.onShow()`. */
export function watchVisibility(el, task) {
  task.visible = false;
  visibility.set(el, task);
  observer.observe(el);
}

export function unwatchVisibility(el) {
  observer.unobserve(el);
  visibility.delete(el);
}
