// Keeps the dashboard live: polls the same-origin fragment endpoint with the session cookie and swaps
// only the sections whose HTML changed. The server escapes every value, so swapping HTML is safe.
// Actions (forms, buttons) are handled by actions.js.
(function () {
  'use strict';
  var BASE_MS = 2500;
  var MAX_MS = 15000;
  var TIMEOUT_MS = 8000;
  var main = document.getElementById('live');
  var status = document.getElementById('live-status');
  var panels = document.getElementById('panels');
  if (!main || !status || !panels) return;

  var last = {};
  var failures = 0;
  var timer = null;
  var inFlight = false;
  var stopped = false;
  var lastOk = Date.now();

  document.querySelectorAll('section[data-section]').forEach(function (el) {
    last[el.id] = null;
  });

  function setStatus(kind, text) {
    status.className = 'live ' + kind;
    status.textContent = text;
  }

  /** Whether a [data-keep] element holds something the operator would lose: input, a request, a result. */
  function inUse(el) {
    if (el.tagName === 'FORM') return el.hasAttribute('data-dirty') || el.getAttribute('aria-busy') === 'true' || el.contains(document.activeElement);
    return !el.hidden && el.childNodes.length > 0;
  }

  /**
   * Replaces a section's HTML without losing what the operator is doing there: forms being filled in
   * or sent and action results (one-time secrets exist only in this DOM) are carried over by id, as
   * are open <details> and the keyboard focus.
   */
  function swap(el, html) {
    var active = document.activeElement;
    var hadFocus = !!active && active !== document.body && el.contains(active);
    var focusId = hadFocus && active.id ? active.id : null;
    // A disclosure's <summary> has no id of its own: find it again through its <details>.
    var summaryOf = hadFocus && active.tagName === 'SUMMARY' && active.parentElement && active.parentElement.id ? active.parentElement.id : null;
    var selection = null;
    try {
      if (hadFocus && typeof active.selectionStart === 'number') selection = [active.selectionStart, active.selectionEnd];
    } catch (e) {
      selection = null; // inputs such as number have no selection
    }
    var kept = [];
    el.querySelectorAll('[data-keep][id]').forEach(function (k) {
      if (inUse(k)) kept.push(k);
    });
    var open = {};
    el.querySelectorAll('details[id]').forEach(function (d) {
      open[d.id] = d.open;
    });
    el.innerHTML = html;
    kept.forEach(function (k) {
      var fresh = el.querySelector('[id="' + k.id + '"]');
      if (fresh && fresh !== k) fresh.replaceWith(k);
    });
    el.querySelectorAll('details[id]').forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(open, d.id)) d.open = open[d.id];
    });
    if (hadFocus && document.activeElement !== active) {
      // The focused element itself when it came back inside a kept form (a row's button), else its namesake.
      var f = el.contains(active) ? active : focusId ? document.getElementById(focusId) : summaryOf ? el.querySelector('details[id="' + summaryOf + '"] > summary') : null;
      if (f && el.contains(f)) {
        f.focus({ preventScroll: true });
        if (selection && f.setSelectionRange) {
          try {
            f.setSelectionRange(selection[0], selection[1]);
          } catch (e) {
            // the element type changed; the focus alone is enough
          }
        }
      }
    }
  }

  function apply(sections) {
    var seen = {};
    sections.forEach(function (s) {
      seen[s.id] = true;
      var el = document.getElementById(s.id);
      if (!el) {
        el = document.createElement('section');
        el.id = s.id;
        el.className = 'card' + (s.slot === 'panel' ? ' panel' : '');
        el.setAttribute('data-section', s.slot);
        (s.slot === 'panel' ? panels : main).appendChild(el);
      }
      if (last[s.id] !== s.html) {
        swap(el, s.html);
        last[s.id] = s.html;
      }
    });
    // A plugin that stopped or failed takes its panel with it.
    panels.querySelectorAll('section[data-section="panel"]').forEach(function (el) {
      if (!seen[el.id]) {
        el.remove();
        delete last[el.id];
      }
    });
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(tick, ms);
  }

  function tick() {
    if (document.hidden || inFlight) return;
    inFlight = true;
    // A controller that hangs (stopped, overloaded) must show as stale, not freeze the poller.
    var abort = typeof AbortController === 'function' ? new AbortController() : null;
    var deadline = abort ? setTimeout(function () { abort.abort(); }, TIMEOUT_MS) : null;
    fetch('/dashboard/fragment', { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' }, signal: abort ? abort.signal : undefined })
      .then(function (res) {
        if (res.status === 401) {
          stopped = true;
          setStatus('bad', 'signed out');
          var note = document.createElement('p');
          note.className = 'alert';
          note.setAttribute('role', 'alert');
          note.innerHTML = 'Your session ended (signed out or the controller restarted). <a href="/">Sign in again</a>.';
          main.insertBefore(note, main.firstChild);
          return;
        }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json().then(function (data) {
          apply(data.sections || []);
          failures = 0;
          lastOk = Date.now();
          setStatus('ok', 'live · ' + new Date(data.now || Date.now()).toLocaleTimeString());
        });
      })
      .catch(function (err) {
        failures += 1;
        var age = Math.round((Date.now() - lastOk) / 1000);
        var why = err && err.name === 'AbortError' ? 'no answer' : err && err.message ? err.message : 'network error';
        setStatus('warn', 'reconnecting… (last update ' + age + ' s ago; ' + why + ')');
      })
      .then(function () {
        clearTimeout(deadline);
        inFlight = false;
        // Back off while the controller is unreachable, so a dead controller is not hammered by open tabs.
        schedule(failures ? Math.min(MAX_MS, BASE_MS * Math.pow(2, failures - 1)) : BASE_MS);
      });
  }

  // An action just changed something (actions.js): show it now rather than at the next tick.
  document.addEventListener('outpost:refresh', function () {
    if (!stopped) schedule(0);
  });
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && !stopped) schedule(0);
  });
  schedule(BASE_MS);
})();
