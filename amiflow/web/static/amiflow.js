// amiflow's back office: small enhancements only; every form works without this file.
"use strict";

// A form marked data-confirm asks before an irreversible step (closing, withdrawing, destroying…).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// An error summary takes the focus, so that a screen reader says it first.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("resume-erreurs");
  if (summary) summary.focus();
});
