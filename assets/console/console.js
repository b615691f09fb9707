// iam-tokens console: enhancements only; every page works without this file.
// Forms marked data-confirm ask before they are sent (revoke, disable).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
