// incrementific's only script: the Copy buttons. Everything else works without JavaScript.
"use strict";

function copyText(target) {
  const text = target.value !== undefined ? target.value : target.textContent;
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain http on another host: select the text and let the browser copy the selection.
  const range = document.createRange();
  if (target.select) {
    target.select();
  } else {
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copy);
  if (!target) return;
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  copyText(target).then(
    () => {
      button.textContent = "Copied";
      button.dataset.copied = "";
    },
    () => {
      button.textContent = "Select and copy by hand";
    },
  ).finally(() => {
    setTimeout(() => {
      button.textContent = label;
      delete button.dataset.copied;
    }, 2500);
  });
});
