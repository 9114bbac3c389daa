// Submits the filter form as soon as a filter changes. Without script the
// Apply button does the same.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("filters");
  if (!form) return;
  form.querySelectorAll("select").forEach(function (s) {
    s.addEventListener("change", function () { form.submit(); });
  });
});
