/* The clerk's counter pages: after a refusal, the typed text is selected in its field, so that the
   clerk types the next try over it at once (no inline script: CSP script-src 'self'). */
(function () {
  "use strict";
  var field = document.querySelector("input[autofocus][aria-invalid=true]");
  if (field) {
    field.focus();
    field.select();
  }
})();
