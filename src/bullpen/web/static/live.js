// bullpen dashboard: live refresh without reloading the page. Every few seconds (the page's
// <meta name="bullpen-refresh">) it fetches the same page and swaps each [data-live] region for
// its fresh copy; it waits while the user is busy with the page (typing, jobs ticked, text
// selected, reading a chart, a tab in the background). It also keeps "3 min ago" times current
// and counts the ticked jobs. Without it every page still works (forms, links, <noscript> reload).
(() => {
  "use strict";
  const status = document.getElementById("live");
  const pauseButton = document.getElementById("live-toggle");
  const QUIET_MS = 4000;
  let lastTouch = 0;
  let pausedByUser = false;
  let timer = 0;

  const say = (text) => { if (status) status.textContent = text; };
  const period = () => {
    const meta = document.querySelector('meta[name="bullpen-refresh"]');
    return meta ? Number(meta.content) * 1000 : 0;
  };

  function busyReason() {
    if (pausedByUser) return "paused";
    if (document.hidden) return "paused: tab in the background";
    const active = document.activeElement;
    if (active && active.matches("input:not([type=checkbox]), select, textarea")) {
      return "paused while you type";
    }
    if (document.querySelector("input[name=ids]:checked")) return "paused: jobs selected";
    const selection = window.getSelection();
    if (selection && !selection.isCollapsed) return "paused: text selected";
    if (Date.now() - lastTouch < QUIET_MS) return "paused while you look";
    return "";
  }

  function relative(seconds) {
    const size = Math.abs(seconds);
    if (size < 5) return "just now";
    const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
    const [unit, length] = units.find(([, s]) => size >= s);
    const amount = size / length;
    const text = amount >= 10 || unit === "min" || unit === "s"
      ? amount.toFixed(0) : amount.toFixed(1).replace(/\.0$/, "");
    return seconds >= 0 ? `${text} ${unit} ago` : `in ${text} ${unit}`;
  }

  function updateTimes() {
    const now = Date.now();
    for (const element of document.querySelectorAll("time[datetime]")) {
      const at = Date.parse(element.getAttribute("datetime"));
      if (!Number.isNaN(at)) element.textContent = relative((now - at) / 1000);
    }
  }

  function updateSelection() {
    const counter = document.getElementById("selected-count");
    const ticked = document.querySelectorAll("input[name=ids]:checked").length;
    if (counter) counter.textContent = ticked ? `${ticked} selected` : "";
    for (const button of document.querySelectorAll("[data-needs-selection]")) {
      button.disabled = ticked === 0;
    }
  }

  function swap(fresh) {
    // <details> the user opened or closed stay that way.
    const open = new Map();
    for (const details of document.querySelectorAll("details[id]")) {
      open.set(details.id, details.open);
    }
    for (const region of document.querySelectorAll("[data-live]")) {
      const next = fresh.getElementById(region.id);
      if (!next) continue;
      for (const details of next.querySelectorAll("details[id]")) {
        if (open.has(details.id)) details.open = open.get(details.id);
      }
      region.replaceWith(document.adoptNode(next));
    }
    updateTimes();
    updateSelection();
  }

  function schedule() {
    clearTimeout(timer);
    if (period()) timer = setTimeout(refresh, period());
  }

  async function refresh() {
    const busy = busyReason();
    if (busy) {
      say(busy);
      schedule();
      return;
    }
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin", cache: "no-store", headers: { "X-Bullpen-Live": "1" },
      });
      if (response.redirected || (response.status >= 400 && response.status < 500)) {
        say("live refresh stopped: reload the page"); // signed out, or the job is gone
        return;
      }
      if (!response.ok) {
        say(`live refresh: the server answered ${response.status}, trying again`);
        schedule();
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      if (busyReason()) {
        schedule();
        return;
      }
      swap(fresh);
      if (!fresh.querySelector('meta[name="bullpen-refresh"]')) {
        document.querySelector('meta[name="bullpen-refresh"]')?.remove();
        say("up to date");
        return;
      }
      say(`live · updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      say("live refresh: no answer, trying again");
    }
    schedule();
  }

  const touched = () => { lastTouch = Date.now(); };
  document.addEventListener("pointerover", (event) => {
    if (event.target.closest && event.target.closest(".chart, .strip")) touched();
  });
  document.addEventListener("toggle", touched, true);
  document.addEventListener("keydown", touched);
  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.id === "select-all") {
      for (const box of document.querySelectorAll("input[name=ids]")) box.checked = target.checked;
    }
    updateSelection();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && period()) refresh();
  });
  if (pauseButton) {
    pauseButton.hidden = !period();
    pauseButton.addEventListener("click", () => {
      pausedByUser = !pausedByUser;
      pauseButton.textContent = pausedByUser ? "Resume live" : "Pause live";
      pauseButton.setAttribute("aria-pressed", String(pausedByUser));
      if (pausedByUser) say("paused"); else refresh();
    });
  }
  const selectAll = document.getElementById("select-all");
  if (selectAll) selectAll.hidden = false;
  updateSelection();
  setInterval(updateTimes, 15000);
  if (period()) {
    say("live");
    schedule();
  }
})();
