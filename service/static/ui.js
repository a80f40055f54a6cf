// The clinician page's small enhancements. The page works without them (no inline script: CSP).
"use strict";

function markNotApplicable() {
  // Findings that apply only to some patients (running analysis: runners; Ober: ITBS) are dimmed,
  // not hidden,
  // when the answer they depend on says otherwise; a value already typed is kept.
  document.querySelectorAll("[data-when-field]").forEach((box) => {
    const name = box.dataset.whenField;
    const wanted = box.dataset.whenValue.split(" ");
    const update = () => {
      // one answer (activity) or several (complaints): dimmed when answered and none applies
      const chosen = Array.from(document.querySelectorAll(`input[name="${name}"]:checked`))
        .map((input) => input.value);
      box.classList.toggle("not-applicable",
        chosen.length > 0 && !chosen.some((value) => wanted.includes(value)));
    };
    document.querySelectorAll(`input[name="${name}"]`).forEach((input) => {
      input.addEventListener("change", update);
    });
    update();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector(".error-summary");
  if (summary) {
    summary.focus();
    // a link to a field moves the focus into it, with its label in view (not only the scroll)
    summary.querySelectorAll("a[href^='#']").forEach((link) => {
      link.addEventListener("click", (event) => {
        const target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) {
          return;
        }
        event.preventDefault();
        const box = target.closest(".field") || target;
        box.scrollIntoView({ block: "start" });
        target.focus({ preventScroll: true });
      });
    });
  }
  const printButton = document.getElementById("print-button");
  if (printButton) {
    printButton.addEventListener("click", () => window.print());
  }
  markNotApplicable();
});

// Paper cannot open a <details>: open them all before printing.
window.addEventListener("beforeprint", () => {
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
});
