/* Forms: move the keyboard focus to the error summary, so that a screen reader reads it first
   and its links lead to the fields (no inline script: CSP script-src 'self'). */
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
})();
