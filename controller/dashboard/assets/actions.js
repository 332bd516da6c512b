// Dashboard actions: every form marked data-op (built by the SDK's form/actionButton helpers) is sent
// with fetch to its route, with the session's CSRF token in a header, after a confirmation when the
// form asks for one. The answer is announced in #action-status and shown under the form. Everything
// that comes from the server or the operator is put in the page as text, never as HTML.
(function () {
  'use strict';
  var MAX_JSON_CHARS = 4000;
  var status = document.getElementById('action-status');
  if (!status) return;

  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute('content') || '' : '';
  }
  var csrf = meta('outpost-csrf');
  var csrfHeader = meta('outpost-csrf-header') || 'x-outpost-csrf';
  var controllerUrl = meta('outpost-controller-url') || location.origin;

  function announce(text, kind) {
    status.className = 'action-status' + (kind ? ' ' + kind : '');
    status.textContent = text;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Typing in a form marks it, so a live refresh keeps it as the operator left it (app.js).
  function markDirty(e) {
    var form = e.target && e.target.closest ? e.target.closest('form[data-op]') : null;
    if (form) form.setAttribute('data-dirty', '');
  }
  document.addEventListener('input', markDirty);
  document.addEventListener('change', markDirty);

  /** The fields as a JSON object: empty ones left out (the route's default applies), repeated names as lists. */
  function bodyOf(form) {
    var out = {};
    var count = 0;
    Array.prototype.forEach.call(form.elements, function (f) {
      if (!f.name || f.disabled || f.type === 'submit' || f.type === 'button') return;
      if ((f.type === 'checkbox' || f.type === 'radio') && !f.checked) return;
      var v = f.value;
      if (v === '') return;
      var multiple = f.closest('[data-multiple]');
      if (multiple) {
        if (!Object.prototype.hasOwnProperty.call(out, f.name)) out[f.name] = [];
        out[f.name].push(v);
      } else out[f.name] = v;
      count += 1;
    });
    return count ? out : null;
  }

  function lookup(data, path) {
    return path.split('.').reduce(function (o, k) {
      return o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
    }, data);
  }

  /** Fills {name} and {a.b} from the answer, {controller} with the URL nodes reach the controller at. */
  function fill(template, data) {
    return template.replace(/\{([A-Za-z0-9_.]+)\}/g, function (_, path) {
      if (path === 'controller') return controllerUrl;
      var v = lookup(data, path);
      return v === undefined || v === null ? '' : String(v);
    });
  }

  function messageOf(res, data) {
    if (res.status === 401) return 'signed out or not allowed: sign in again';
    if (data && typeof data === 'object') {
      if (data.error && data.error.message) return String(data.error.message);
      if (data.message) return String(data.message);
      if (data.msg) return String(data.msg);
    }
    if (typeof data === 'string' && data) return data.slice(0, 300);
    return 'HTTP ' + res.status;
  }

  function resultBox(form) {
    return document.getElementById(form.id + '-result');
  }

  /** Puts nodes in the result box with a button that empties it again; no nodes: empty and hidden. */
  function show(box, nodes, dismissLabel) {
    if (!box) return;
    if (nodes.length) {
      var done = el('button', 'btn small', dismissLabel || 'Hide');
      done.type = 'button';
      done.setAttribute('data-dismiss', box.id);
      nodes = nodes.concat([done]);
    }
    box.replaceChildren.apply(box, nodes);
    box.hidden = nodes.length === 0;
  }

  /** One-time values in read-only fields with Copy buttons, and a button that removes them from the page. */
  function onceView(form, spec, data) {
    var nodes = [el('p', 'once-note', spec.note)];
    spec.lines.forEach(function (line, i) {
      var id = form.id + '-once-' + i;
      var label = el('label', null, line.label);
      label.htmlFor = id;
      var input = el('input', 'once-value');
      input.id = id;
      input.type = 'text';
      input.readOnly = true;
      input.spellcheck = false;
      input.value = fill(line.template, data);
      var copy = el('button', 'btn small', 'Copy');
      copy.type = 'button';
      copy.setAttribute('data-copy', id);
      copy.setAttribute('aria-label', 'Copy: ' + line.label);
      var row = el('div', 'once-line');
      row.append(input, copy);
      nodes.push(label, row);
    });
    return nodes;
  }

  function succeed(form, data) {
    var kind = form.getAttribute('data-result');
    var box = resultBox(form);
    announce(fill(form.getAttribute('data-success') || 'Done.', data), 'ok');
    if (kind === 'once') {
      show(box, onceView(form, JSON.parse(form.getAttribute('data-once')), data), 'I have copied it: hide');
      var first = box && box.querySelector('input');
      if (first) {
        first.focus();
        first.select();
      }
    } else if (kind === 'json') {
      var text = JSON.stringify(data, null, 2) || '';
      show(box, [el('pre', 'op-json', text.length > MAX_JSON_CHARS ? text.slice(0, MAX_JSON_CHARS) + '\n…' : text)]);
    } else show(box, []);
    form.reset();
    form.removeAttribute('data-dirty');
  }

  function fail(form, message) {
    announce('Failed: ' + message, 'bad');
    show(resultBox(form), [el('p', 'alert', message)]);
  }

  function busy(form, on) {
    form.setAttribute('aria-busy', on ? 'true' : 'false');
    form.querySelectorAll('button[type="submit"]').forEach(function (b) {
      b.disabled = on;
    });
  }

  function send(form) {
    if (form.getAttribute('aria-busy') === 'true') return;
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      announce('Cancelled.', '');
      return;
    }
    var method = form.getAttribute('data-method') || 'POST';
    var body = bodyOf(form);
    var headers = { accept: 'application/json' };
    headers[csrfHeader] = csrf;
    if (body) headers['content-type'] = 'application/json';
    var id = form.id;
    busy(form, true);
    announce('Working…', '');
    fetch(form.getAttribute('action'), { method: method, credentials: 'same-origin', cache: 'no-store', headers: headers, body: body ? JSON.stringify(body) : undefined })
      .then(function (res) {
        return res.text().then(function (text) {
          var data = text;
          try {
            data = text ? JSON.parse(text) : {};
          } catch (e) {
            data = text;
          }
          // A live refresh may have replaced the form meanwhile: act on the one in the page now.
          var current = document.getElementById(id) || form;
          if (res.ok) succeed(current, data);
          else fail(current, messageOf(res, data));
        });
      })
      .catch(function (err) {
        fail(document.getElementById(id) || form, 'the controller did not answer (' + (err && err.message ? err.message : 'network error') + ')');
      })
      .then(function () {
        busy(document.getElementById(id) || form, false);
        document.dispatchEvent(new CustomEvent('outpost:refresh'));
      });
  }

  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (!form.matches || !form.matches('form[data-op]')) return;
    e.preventDefault();
    send(form);
  });

  function copy(input) {
    var done = function () {
      announce('Copied.', 'ok');
    };
    var manual = function () {
      input.focus();
      input.select();
      announce('Selected: press Ctrl+C (or ⌘C) to copy.', '');
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(input.value).then(done, manual);
    else manual();
  }

  document.addEventListener('click', function (e) {
    var t = e.target && e.target.closest ? e.target.closest('[data-copy], [data-dismiss]') : null;
    if (!t) return;
    if (t.hasAttribute('data-copy')) {
      var input = document.getElementById(t.getAttribute('data-copy'));
      if (input) copy(input);
      return;
    }
    var box = document.getElementById(t.getAttribute('data-dismiss'));
    var form = box && document.getElementById(box.id.replace(/-result$/, ''));
    show(box, []);
    announce('Hidden.', '');
    var button = form && form.querySelector('button[type="submit"]');
    if (button) button.focus();
  });
})();
