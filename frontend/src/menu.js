// The site's navigation folds into a menu button on narrow screens (a phone): the button only
// appears once this script runs, so without JavaScript the links stay shown, wrapped.
const header = document.querySelector(".site-header");
const button = header?.querySelector(".menu-toggle");
const nav = header?.querySelector("#site-nav");
if (header && button && nav) {
  const set = (open) => {
    header.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", String(open));
  };
  header.classList.add("menu-ready");
  button.hidden = false;
  button.addEventListener("click", () => set(!header.classList.contains("menu-open")));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && header.classList.contains("menu-open")) {
      set(false);
      button.focus();
    }
  });
}
