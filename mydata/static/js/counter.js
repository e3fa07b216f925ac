/* The counter page (templates/portal/counter_use.html): count down the code's 20 minutes, and ask
   the server every 2 seconds for the state of the use (an HTML fragment in the reader's language),
   putting it in the status region only when its words change, so that a screen reader announces
   each change once. When the use is no longer open (shown, cancelled, expired, void), polling and
   the countdown stop, and what no longer applies (the code, the Cancel button) is hidden. Without
   JavaScript the page says until when the code is valid, and a reload shows the same state. */
(function () {
  "use strict";
  var region = document.getElementById("counter-status");
  if (!region || !window.fetch) {
    return;
  }
  var url = region.getAttribute("data-status-url");
  var timer = document.getElementById("counter-countdown");
  var panel = document.getElementById("counter-code-panel");
  var cancel = document.querySelector("form.counter-cancel");
  var OPEN = { offered: true, claimed: true };
  var state = stateOf(region);
  var deadline = 0;
  var ticking = null;
  var waiting = null;
  var asking = false;

  function stateOf(root) {
    var holder = root.querySelector("[data-state]");
    return holder ? holder.getAttribute("data-state") : "";
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function stopCountdown() {
    if (ticking !== null) {
      window.clearInterval(ticking);
      ticking = null;
    }
  }

  function tick() {
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    if (left > 0) {
      timer.textContent = timer.getAttribute("data-left").replace("{time}", Math.floor(left / 60) + ":" + pad(left % 60));
    } else {
      timer.textContent = timer.getAttribute("data-ended");
      stopCountdown();
      schedule(0); // the server says what became of it
    }
  }

  function settle(next) {
    state = next;
    if (panel && state !== "offered") {
      panel.hidden = true; // a clerk took the code (or it ended): it can no longer be used
    }
    if (!OPEN[state]) {
      stopCountdown();
      if (cancel) {
        cancel.hidden = true;
      }
    }
  }

  function schedule(delay) {
    if (waiting !== null) {
      window.clearTimeout(waiting);
    }
    waiting = window.setTimeout(poll, delay);
  }

  function poll() {
    waiting = null;
    if (asking || !OPEN[state]) {
      return;
    }
    asking = true;
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 200 || response.status === 401) {
          return response.text();
        }
        if (response.status === 404) {
          return null;
        }
        throw new Error("status " + response.status);
      })
      .then(function (html) {
        asking = false;
        if (html === null) {
          settle("gone");
          return;
        }
        var holder = document.createElement("div");
        holder.innerHTML = html; // the server's own escaped fragment (same origin, CSP script-src 'self')
        if (holder.textContent.replace(/\s+/g, " ").trim() !== region.textContent.replace(/\s+/g, " ").trim()) {
          region.innerHTML = html;
        }
        settle(stateOf(holder));
        if (OPEN[state]) {
          schedule(2000);
        }
      })
      .catch(function () {
        asking = false;
        schedule(5000);
      });
  }

  settle(state);
  if (timer && OPEN[state]) {
    deadline = Date.now() + 1000 * parseInt(timer.getAttribute("data-seconds-left"), 10);
    tick();
    ticking = window.setInterval(tick, 1000);
  }
  if (OPEN[state]) {
    schedule(2000);
  }
})();
