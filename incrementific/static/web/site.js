// incrementific's only script: the Copy buttons, and the live example of a series' format.
// Everything else works without JavaScript.
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

// A series' format, printed as it would print number 42 today: the rules of counters/series.py
// (compile_format), which checks it again when the form is sent; tests/test_browser.py compares.
const DATE_TOKENS = {
  year: (d) => String(d.getFullYear()).padStart(4, "0"),
  yy: (d) => String(d.getFullYear() % 100).padStart(2, "0"),
  month: (d) => String(d.getMonth() + 1).padStart(2, "0"),
  day: (d) => String(d.getDate()).padStart(2, "0"),
};

function formatExample(template, value, day) {
  if (template === "") return String(value);
  if (template.length > 100) return null;
  if (/[\u0000-\u001f\u007f-\u009f]/.test(template)) return null;
  let out = "";
  for (let i = 0; i < template.length; ) {
    if (template.startsWith("{{", i) || template.startsWith("}}", i)) {
      out += template[i];
      i += 2;
    } else if (template[i] === "}") {
      return null;
    } else if (template[i] !== "{") {
      out += template[i];
      i += 1;
    } else {
      const end = template.indexOf("}", i);
      const name = end < 0 ? "" : template.slice(i + 1, end);
      if (end < 0 || name.includes("{")) return null;
      const width = /^value:0([1-9][0-9]{0,2})$/.exec(name);
      if (name === "value") out += String(value);
      else if (width && Number(width[1]) <= 20) out += String(value).padStart(Number(width[1]), "0");
      else if (DATE_TOKENS[name]) out += DATE_TOKENS[name](day);
      else return null;
      i = end + 1;
    }
  }
  return out;
}

function showFormatExample() {
  const output = document.querySelector("[data-format-example]");
  const input = output && document.getElementById(output.htmlFor.value || "f-format");
  if (!input) return;
  const printed = formatExample(input.value, 42, new Date());
  output.textContent = printed === null ? "not a valid format yet" : printed;
}

document.addEventListener("input", (event) => {
  if (event.target.id === "f-format") showFormatExample();
});
document.addEventListener("DOMContentLoaded", showFormatExample);
