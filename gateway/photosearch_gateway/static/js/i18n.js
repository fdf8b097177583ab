// The pages' words come from message catalogs (/static/locales/<language>.json) through
// i18next. The language follows the browser unless the visitor picked one, which is kept
// on this device. Elements name their text with data-i18n="key" and their attributes with
// data-i18n-<attribute>="key"; scripts call t(key, values).
import i18next from "/vendor/i18next/i18next.js";

export const LANGUAGES = ["en", "fr"];
const KEY = "photosearch-language";

export function chosenLanguage() {
  const stored = localStorage.getItem(KEY);
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

async function catalog(language) {
  const reply = await fetch(`/static/locales/${language}.json`);
  if (!reply.ok) throw new Error(`the ${language} messages did not load (HTTP ${reply.status})`);
  return reply.json();
}

export const t = (key, values) => i18next.t(key, values);

const ATTRIBUTES = ["placeholder", "title", "aria-label", "alt"];

export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attribute of ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(node.getAttribute(`data-i18n-${attribute}`)));
    }
  }
}

// What the server said, in the visitor's language: its stable code translated when the
// catalog has it (the server's English message is more precise: it stays for English).
export function codeText(group, code, message) {
  const key = `${group}.${code}`;
  if (i18next.language !== "en" && code && i18next.exists(key)) return t(key);
  return message;
}

export function errorText(error) {
  return codeText("errors", error?.code, error?.message || String(error));
}

// Before the page draws anything: the catalog of the language, English beneath it for a
// key a catalog would lack, the page's static text, and the language switch.
export async function setup() {
  const language = chosenLanguage();
  const resources = { en: { translation: await catalog("en") } };
  if (language !== "en") resources[language] = { translation: await catalog(language) };
  await i18next.init({
    lng: language, fallbackLng: "en", resources, interpolation: { escapeValue: false },
  });
  document.documentElement.lang = language;
  translate();
  document.body.dataset.language = language; // the words are in place (tests wait for it)
  const picker = document.getElementById("language");
  if (picker) {
    picker.value = language;
    picker.addEventListener("change", () => {
      localStorage.setItem(KEY, picker.value);
      location.reload();
    });
  }
  return language;
}
