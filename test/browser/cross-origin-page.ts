/**
 * The script of the test page that test/browser/console.chromium.test.ts serves from an origin
 * other than the gateway's: it puts the browser client factory on `window`, as an app's bundle
 * would hold it, for the test to call from the page.
 */
import * as voxgate from "../../clients/browser.js";

// Typed by hand: test/ compiles for Node, without the DOM library.
const page = globalThis as unknown as {
  voxgate: typeof voxgate;
  document: { body: { dataset: Record<string, string> } };
};
page.voxgate = voxgate;
page.document.body.dataset.ready = "true";
