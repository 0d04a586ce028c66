// « Afficher / Masquer » buttons beside password fields (typing on a phone is error-prone).
// Progressive enhancement: the buttons stay hidden without this script. Their texts come from
// the page (data-show / data-hide), so they follow the page's language.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button.reveal[aria-controls]");
  Array.prototype.forEach.call(buttons, function (button) {
    var input = document.getElementById(button.getAttribute("aria-controls"));
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var shown = input.type === "password";
      input.type = shown ? "text" : "password";
      button.textContent = button.getAttribute(shown ? "data-hide" : "data-show");
      button.setAttribute("aria-label", button.getAttribute(shown ? "data-hide-label" : "data-show-label"));
    });
  });
  // Before sending, put every field back to a password field (browsers then offer to save it).
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.querySelectorAll("button.reveal[aria-controls]"), function (button) {
        var input = document.getElementById(button.getAttribute("aria-controls"));
        if (input) { input.type = "password"; }
      });
    });
  });
})();
