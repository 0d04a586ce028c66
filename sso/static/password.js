// Live check of the password rules as the person types. Progressive enhancement: without this
// script the form still works and the server decides; with it, the same server-side rules are
// asked (debounced) so what the page shows is exactly what the server will accept.
// Every text comes from the page (data-* attributes rendered from the message catalogues).
(function () {
  "use strict";
  var form = document.getElementById("password-form");
  if (!form || !window.fetch) { return; }
  var password = document.getElementById("password");
  var confirm = document.getElementById("confirm");
  var status = document.getElementById("confirm-status");
  var rules = document.getElementById("rules");
  var summary = document.getElementById("rules-summary");
  var timer = null;
  var lastSummary = "";

  function check() {
    var body = new FormData();
    body.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.append("password", password.value);
    body.append("confirm", confirm.value);
    fetch(form.getAttribute("data-check-url"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) {
        if (!result || !result.rules) { return; }
        var met = 0, total = 0;
        Object.keys(result.rules).forEach(function (rule) {
          var item = rules.querySelector('li[data-rule="' + rule + '"]');
          if (!item) { return; }
          var ok = result.rules[rule] && password.value.length > 0;
          total += 1;
          if (ok) { met += 1; }
          item.classList.toggle("met", ok);
          item.classList.remove("failed");
          var state = item.querySelector(".rule-state");
          if (state) {
            state.textContent = " : " + rules.getAttribute(ok ? "data-met" : "data-unmet");
          }
        });
        var text = summary.getAttribute("data-text").replace("{met}", met).replace("{total}", total);
        if (text !== lastSummary) { summary.textContent = text; lastSummary = text; }
        status.textContent = confirm.value
          ? status.getAttribute(result.confirm ? "data-same" : "data-differ") : "";
      })
      .catch(function () { /* the server will decide on submit */ });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 400);
  }
  password.addEventListener("input", schedule);
  confirm.addEventListener("input", schedule);
})();
