// iam-tokens console: enhancements only; every page works without this file.
// Forms marked data-confirm ask before they are sent (revoke, disable).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A page brought back from the back/forward cache (after sign-out, say) is asked for again, so
// that the server decides what it shows (pages are sent no-store; this covers browsers that
// keep such pages anyway).
window.addEventListener("pageshow", (event) => {
  if (event.persisted) {
    window.location.reload();
  }
});
