// Live check of the password rules as the person types. Progressive enhancement: without this
// script the form still works and the server decides; with it, the same server-side rules are
// asked (debounced) so what the page shows is exactly what the server will accept.
(function () {
  "use strict";
  var form = document.getElementById("password-form");
  if (!form || !window.fetch) { return; }
  var password = document.getElementById("password");
  var confirm = document.getElementById("confirm");
  var status = document.getElementById("confirm-status");
  var timer = null;
  var texts = document.documentElement.lang === "en"
    ? { same: "The two passwords match.", differ: "The two passwords differ." }
    : { same: "Les deux mots de passe sont identiques.", differ: "Les deux mots de passe sont différents." };

  function check() {
    var body = new FormData();
    body.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.append("password", password.value);
    body.append("confirm", confirm.value);
    fetch(form.getAttribute("data-check-url"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) {
        if (!result || !result.rules) { return; }
        Object.keys(result.rules).forEach(function (rule) {
          var item = document.querySelector('#rules li[data-rule="' + rule + '"]');
          if (item) {
            item.classList.toggle("met", result.rules[rule] && password.value.length > 0);
            item.classList.remove("failed");
          }
        });
        status.textContent = confirm.value ? (result.confirm ? texts.same : texts.differ) : "";
      })
      .catch(function () { /* the server will decide on submit */ });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 250);
  }
  password.addEventListener("input", schedule);
  confirm.addEventListener("input", schedule);
})();
