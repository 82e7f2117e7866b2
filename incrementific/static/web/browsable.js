// The browsable API's forms that change something carry an Idempotency-Key of their own, new
// with each page (an HTML form cannot send the header): a double click or a form sent again
// makes its change once. The server reads it as the form field _idempotency_key.
"use strict";

for (const form of document.querySelectorAll("form[method='POST'], form[data-method]")) {
  if (form.closest(".navbar")) continue; // the log-out form
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const field = document.createElement("input");
  field.type = "hidden";
  field.name = "_idempotency_key";
  field.value = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  form.appendChild(field);
}
