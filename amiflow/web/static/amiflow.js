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

// A document's upload (form marked data-envoi) goes by XMLHttpRequest, with its progress shown in a
// <progress> bar and said in a polite live region; then the page reloads (the refusal, if any, is said).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !("envoi" in form.dataset) || event.defaultPrevented) return;
  const bar = form.querySelector("progress");
  const status = form.querySelector("[aria-live]");
  const token = form.querySelector("input[name=csrf]");
  if (!bar || !status || !token || !window.FormData) return;
  event.preventDefault();
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.setRequestHeader("X-CSRF-Token", token.value);
  bar.hidden = false;
  let said = -1;
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const percent = Math.round((e.loaded / e.total) * 100);
    bar.value = percent;
    bar.textContent = percent + " %";
    if (percent === 100 || percent - said >= 10) {
      said = percent;
      status.textContent = "Envoi : " + percent + " %";
    }
  });
  request.addEventListener("load", () => {
    if (request.status < 400) {
      status.textContent = "Document envoyé : la page se recharge.";
      let target = window.location.href;  // the server says where to go (its notice waits there)
      try { target = JSON.parse(request.responseText).location || target; } catch (e) { /* stay here */ }
      window.location.assign(target);
      return;
    }
    const answer = new DOMParser().parseFromString(request.responseText, "text/html");
    const reason = answer.querySelector(".envoi-document .message-erreur, .erreur-texte");
    status.textContent = reason ? reason.textContent.replace(/^Erreur : /, "Refusé : ") : "Envoi refusé.";
    bar.hidden = true;
  });
  request.addEventListener("error", () => {
    status.textContent = "L’envoi a échoué : vérifiez la connexion et recommencez.";
    bar.hidden = true;
  });
  request.send(new FormData(form));
});
