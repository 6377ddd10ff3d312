// Progressive enhancement only: the copy buttons. Every page works without this file (the
// values are in read-only fields, ready to select).
document.querySelectorAll("button[data-copy]").forEach((button) => {
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = " " + (field.labels[0] ? field.labels[0].textContent : "value");
  const word = document.createTextNode("Copy");
  button.replaceChildren(word, label);
  button.hidden = false;
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
    } catch (e) {
      document.execCommand("copy");
    }
    word.textContent = "Copied";
    setTimeout(() => { word.textContent = "Copy"; }, 2000);
  });
});
