// Submits the CAS method=POST form at once (kept out of the page: the CSP forbids inline script).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("autopost");
  if (form) { form.submit(); }
});
