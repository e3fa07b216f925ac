/* Mobile ID login: ask the server every 2 seconds whether the phone has answered; when it has
   (approved, or the 120 s are over), send the "check again" form, exactly as the button does
   without JavaScript. The status line is an aria-live region and changes only when the state
   changes; the countdown beside it is not announced. */
(function () {
  "use strict";
  var form = document.getElementById("mobile-check-form");
  var status = document.getElementById("mobile-status");
  var countdown = document.getElementById("mobile-countdown");
  if (!form || !status || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-status-url");
  var submitted = false;

  function show(data) {
    if (data.message && status.textContent.trim() !== data.message) {
      status.textContent = data.message;
    }
    if (countdown) {
      countdown.textContent = data.countdown || "";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        show(data);
        if (data.status === "pending") {
          window.setTimeout(poll, 2000);
        } else if (!submitted) {
          submitted = true;
          form.submit();
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  window.setTimeout(poll, 2000);
})();
