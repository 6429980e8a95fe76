// owb view: the only script. "copy" buttons put a command or path on the clipboard; nothing else, nothing fetched.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const text = button.textContent;
    button.textContent = "copied";
    setTimeout(() => { button.textContent = text; }, 1200);
  });
});
