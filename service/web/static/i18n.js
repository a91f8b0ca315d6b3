// Interface text in English and Chinese. Feedback text and quotes are shown as written.
//
// The words live in strings.json beside this script: one table for the dashboard and the
// email digests (the digest's own keys start with "digest."; service/delivery/strings.py
// reads the same file). It is fetched synchronously, with this script's version query so it
// is cached alike, because the scripts after this one look words up as soon as they run.
"use strict";
window.RADAR_I18N = (() => {
  const script = new URL(document.currentScript.src);
  const url = new URL("strings.json", script);
  url.search = script.search;
  const xhr = new XMLHttpRequest();
  try {
    xhr.open("GET", url, false);
    xhr.send();
    if (xhr.status === 200) return JSON.parse(xhr.responseText);
    console.error(`interface text: ${url.pathname} answered ${xhr.status}`);
  } catch (err) {
    console.error(`interface text: ${url.pathname} could not be read: ${err}`);
  }
  return { en: {}, zh: {} }; // the pages still draw, with keys for words
})();
