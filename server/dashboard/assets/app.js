// agentkeys dashboard: the little JavaScript the pages use, on top of htmx
// (loaded before this file, both deferred; nothing inline: the CSP allows
// scripts from this origin only). Every page works without it.
//
// - htmx requests carry the session's CSRF token as X-CSRF-Token, read from
//   <meta name="csrf-token">.
// - <button type="button" class="copy" data-copy="#id" hidden> copies the
//   text of #id and says "Copied" (a polite live region); the button is
//   hidden until this file shows it.
// - <button type="button" class="add-row" data-template="#tpl"
//   data-into="#rows" hidden> appends a copy of <template id="tpl">, with
//   "__N__" in its id, for and name attributes replaced by a fresh number.
// - <a data-follow href="…"> is followed at once (the OAuth provider's
//   authorization page; without JavaScript the person clicks it).
// - In <tbody data-dedupe>, rows sharing a data-key keep only the first
//   (newest): the audit table's live rows may bring a newer version of an
//   event already shown (a pending request, completed).
(function () {
  'use strict';

  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute('content') : '';
  document.addEventListener('htmx:configRequest', function (e) {
    if (token) {
      e.detail.headers['X-CSRF-Token'] = token;
    }
  });

  function status(button) {
    var s = button.nextElementSibling;
    if (!s || !s.classList.contains('copy-status')) {
      s = document.createElement('span');
      s.className = 'copy-status';
      s.setAttribute('role', 'status');
      s.setAttribute('aria-live', 'polite');
      button.insertAdjacentElement('afterend', s);
    }
    return s;
  }

  // fallbackCopy selects el's text and asks the browser to copy it (plain
  // HTTP on a non-loopback address has no navigator.clipboard).
  function fallbackCopy(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (err) {
      ok = false;
    }
    return ok;
  }

  function copy(button) {
    var el = document.querySelector(button.getAttribute('data-copy'));
    if (!el) {
      return;
    }
    var text = el.textContent;
    var said = status(button);
    var done = function () { said.textContent = 'Copied'; };
    var failed = function () {
      said.textContent = fallbackCopy(el) ? 'Copied' : 'Selected: press Ctrl+C (⌘C) to copy';
    };
    said.textContent = '';
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, failed);
    } else {
      failed();
    }
  }

  var rows = 0;
  function addRow(button) {
    var tpl = document.querySelector(button.getAttribute('data-template'));
    var into = document.querySelector(button.getAttribute('data-into'));
    if (!tpl || !into) {
      return;
    }
    rows++;
    var n = 'js' + rows;
    var frag = tpl.content.cloneNode(true);
    frag.querySelectorAll('[id], [for], [name]').forEach(function (el) {
      ['id', 'for', 'name'].forEach(function (a) {
        var v = el.getAttribute(a);
        if (v) {
          el.setAttribute(a, v.split('__N__').join(n));
        }
      });
    });
    var first = frag.querySelector('input, select, textarea');
    into.appendChild(frag);
    if (first) {
      first.focus();
    }
  }

  document.addEventListener('click', function (e) {
    var b = e.target.closest('button.copy[data-copy]');
    if (b) {
      copy(b);
      return;
    }
    b = e.target.closest('button.add-row[data-template]');
    if (b) {
      addRow(b);
    }
  });

  function init(root) {
    root.querySelectorAll('button.copy[hidden], button.add-row[hidden]').forEach(function (b) {
      b.hidden = false;
    });
  }
  init(document);
  document.addEventListener('htmx:load', function (e) {
    init(e.detail.elt);
  });

  document.addEventListener('htmx:afterSettle', function () {
    document.querySelectorAll('tbody[data-dedupe]').forEach(function (body) {
      var seen = {};
      body.querySelectorAll('tr[data-key]').forEach(function (tr) {
        var k = tr.getAttribute('data-key');
        if (seen[k]) {
          tr.remove();
        }
        seen[k] = true;
      });
    });
  });

  var follow = document.querySelector('a[data-follow]');
  if (follow) {
    window.location.assign(follow.href);
  }
})();
