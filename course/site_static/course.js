// The course website's own script (course/site.py copies it into _static/). No network: every
// file it uses is served by the site.
"use strict";

// Quizzes: the page holds each option's feedback and the salted SHA-256 of the right option
// (course/quiz.py), never the letter. A click hashes the choice in the browser and shows the
// option's feedback, as answer("NN.K", "x") does in the notebook.
async function courseDigest(text) {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function courseQuiz(box) {
  const dataNode = box.querySelector("script.course-quiz-data");
  const list = box.querySelector("ul");
  if (!dataNode || !list) return;
  const data = JSON.parse(dataNode.textContent);
  const feedback = document.createElement("p");
  feedback.className = "course-quiz-feedback";
  feedback.setAttribute("aria-live", "polite");
  feedback.textContent = "Choose an option to check it.";
  list.after(feedback);
  for (const item of list.querySelectorAll(":scope > li")) {
    const match = item.textContent.trim().match(/^([a-z])\)/);
    if (!match) continue;
    const choice = match[1];
    item.classList.add("course-quiz-option");
    item.setAttribute("role", "button");
    item.setAttribute("tabindex", "0");
    item.dataset.choice = choice;
    const pick = async () => {
      const right = (await courseDigest(`${data.salt}:${data.id}:${choice}`)) === data.hash;
      for (const other of list.querySelectorAll(".course-quiz-option")) other.classList.remove("course-right", "course-wrong");
      item.classList.add(right ? "course-right" : "course-wrong");
      const verdict = right ? `${choice}) is right. ` : `${choice}) is not right. `;
      feedback.innerHTML = `<strong>${verdict}</strong>${data.feedback[choice] || ""}${right ? "" : " Try another option."}`;
    };
    item.addEventListener("click", pick);
    item.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pick(); }
    });
  }
  box.classList.add("course-quiz-ready");
}

async function courseDiagrams() {
  if (typeof mermaid === "undefined" || !document.querySelector("pre.mermaid")) return;
  const dark = document.documentElement.dataset.theme === "dark";
  mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: dark ? "dark" : "default" });
  await mermaid.run({ querySelector: "pre.mermaid" });
  document.documentElement.dataset.mermaidDone = "1";
}

function courseStart() {
  document.querySelectorAll("div.course-quiz").forEach(courseQuiz);
  courseDiagrams().catch((error) => { console.error("Mermaid:", error); });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", courseStart);
else courseStart();
