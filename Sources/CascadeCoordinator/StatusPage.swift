import CascadeCrypto
import Foundation

/// The live status page: one self-contained HTML document (inline CSS and JavaScript, nothing
/// fetched from elsewhere) that reads `status.json` from the same listener every few seconds
/// and draws the fleet per cluster, the running rollout and the last events.
///
/// What agents control (ids, versions, addresses, event details) reaches the page only as
/// JSON data, and the script puts it in the document only through `textContent` and
/// attribute setters — never as markup — with control characters shown as `\xNN`. The
/// Content-Security-Policy allows exactly this script and this style (by their SHA-256),
/// connections to the page's own origin, and nothing else: no other script, no inline
/// handler, no frame, no form, no plugin.
enum StatusPage {
    static let refreshSeconds = 3

    static let style = """
        :root { color-scheme: light; --ok: #2e9d5b; --busy: #3b82f6; --bad: #d64541; --back: #e0a030; --wait: #d5dae1; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f4f6f9; }
        header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #1d2330; color: #fff; }
        header h1 { margin: 0; font-size: 20px; font-weight: 600; }
        .status { font-size: 13px; opacity: .85; }
        .status.error { color: #ffb4ab; opacity: 1; font-weight: 600; }
        main { padding: 8px 24px 32px; }
        h2 { font-size: 15px; text-transform: uppercase; letter-spacing: .06em; color: #5a6374; margin: 22px 0 10px; }
        .muted { color: #7a8394; }
        .card { background: #fff; border: 1px solid #dfe3ea; border-radius: 8px; padding: 12px 14px; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(470px, 1fr)); gap: 14px; }
        .rollout .title { font-size: 16px; font-weight: 600; }
        .pill { display: inline-block; white-space: nowrap; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #e8ebf0; }
        .pill.running, .pill.members, .pill.leader, .pill.requested { background: #dbe8ff; color: #1e4fb3; }
        .pill.succeeded, .pill.healthy { background: #d9f2e3; color: #1d6b3e; }
        .pill.failed, .pill.aborted { background: #fbdcdc; color: #9b2320; }
        .pill.partial, .pill.paused, .pill.rolled-back { background: #fcefd2; color: #8a5a00; }
        .bar { display: flex; height: 12px; border-radius: 6px; overflow: hidden; background: var(--wait); margin: 6px 0; }
        .bar span { display: block; height: 100%; }
        .seg-healthy { background: var(--ok); } .seg-busy { background: var(--busy); }
        .seg-failed { background: var(--bad); } .seg-rolled-back { background: var(--back); }
        .progress-row { display: grid; grid-template-columns: 150px 90px 1fr 70px; gap: 10px; align-items: center; margin: 4px 0; }
        .legend { font-size: 12px; color: #5a6374; display: flex; gap: 14px; margin-top: 4px; }
        .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
        table { width: 100%; border-collapse: collapse; margin-top: 8px; font-size: 13px; }
        th { text-align: left; color: #5a6374; font-weight: 600; border-bottom: 1px solid #e4e7ec; padding: 3px 6px 3px 0; }
        td { border-bottom: 1px solid #f0f2f5; padding: 3px 6px 3px 0; overflow-wrap: anywhere; }
        td:nth-child(-n+3) { white-space: nowrap; }
        tr.leader td:first-child { font-weight: 600; }
        .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 5px; background: #b5bcc8; }
        .dot.up { background: var(--ok); }
        .cluster h3 { margin: 0; font-size: 15px; }
        .cluster .meta { color: #5a6374; font-size: 12px; }
        .events { list-style: none; padding: 0; margin: 0; }
        .events li { display: grid; grid-template-columns: 190px 150px 190px 1fr; gap: 10px; padding: 4px 0; border-bottom: 1px solid #e9ecf1; font-size: 13px; }
        .events .detail { word-break: break-word; }
        """

    static let script = """
        "use strict";
        (function () {
          var REFRESH_MS = \(refreshSeconds * 1000);
          // Control characters become visible text (\\xNN); everything else is shown as it is.
          function visible(value) {
            return String(value).replace(/[\\u0000-\\u001f\\u007f-\\u009f]/g, function (c) {
              return "\\\\x" + ("0" + c.charCodeAt(0).toString(16)).slice(-2);
            });
          }
          // The only way data enters the document: textContent, never markup.
          function el(tag, className, text) {
            var node = document.createElement(tag);
            if (className) node.className = className;
            if (text !== undefined && text !== null) node.textContent = visible(text);
            return node;
          }
          function pill(state) {
            return el("span", "pill " + String(state).replace(/[^a-z-]/g, ""), state);
          }
          function sum(counts) {
            var total = 0;
            for (var key in counts) total += counts[key];
            return total;
          }
          function bar(counts) {
            var total = sum(counts);
            var node = el("div", "bar");
            var parts = [["healthy", counts.healthy], ["busy", counts.instructed + counts.downloading + counts.installing],
                         ["failed", counts.failed], ["rolled-back", counts.rolled_back]];
            parts.forEach(function (part) {
              if (!total || !part[1]) return;
              var segment = el("span", "seg-" + part[0]);
              segment.style.width = (100 * part[1] / total) + "%";
              segment.title = part[0] + ": " + part[1];
              node.appendChild(segment);
            });
            return node;
          }
          function legend() {
            var node = el("div", "legend");
            [["healthy", "healthy"], ["busy", "in flight"], ["failed", "failed"], ["rolled-back", "rolled back"], ["", "pending"]]
              .forEach(function (item) {
                var entry = el("span");
                var swatch = el("i", item[0] ? "seg-" + item[0] : "");
                if (!item[0]) swatch.style.background = "var(--wait)";
                entry.appendChild(swatch);
                entry.appendChild(document.createTextNode(item[1]));
                node.appendChild(entry);
              });
            return node;
          }
          function renderRollouts(rollouts) {
            var list = document.getElementById("rollout-list");
            if (!rollouts.length) {
              list.replaceChildren(el("p", "muted", "No rollout yet."));
              return;
            }
            list.replaceChildren.apply(list, rollouts.map(function (r) {
              var card = el("div", "card rollout");
              card.dataset.rollout = String(r.id);
              var title = el("div", "title", "Rollout " + r.id + " \\u2192 release " + r.release + " ");
              title.appendChild(pill(r.state));
              card.appendChild(title);
              var total = sum(r.totals);
              card.appendChild(el("div", "meta muted",
                r.totals.healthy + " of " + total + " agents healthy \\u00b7 started by " + r.created_by +
                (r.started_at ? " at " + r.started_at : "") + (r.message ? " \\u00b7 " + r.message : "")));
              card.appendChild(bar(r.totals));
              card.appendChild(legend());
              r.clusters.forEach(function (c) {
                var row = el("div", "progress-row");
                row.dataset.progressCluster = c.prefix;
                row.appendChild(el("span", "", c.prefix));
                row.appendChild(pill(c.phase));
                row.appendChild(bar(c.counts));
                row.appendChild(el("span", "muted", c.counts.healthy + "/" + sum(c.counts)));
                card.appendChild(row);
              });
              return card;
            }));
          }
          function renderClusters(clusters, rollouts) {
            var progress = {};
            rollouts.forEach(function (r) {
              r.clusters.forEach(function (c) { progress[c.prefix] = c; });
            });
            var grid = document.getElementById("clusters");
            if (!clusters.length) {
              grid.replaceChildren(el("p", "muted", "No agent has registered yet."));
              return;
            }
            grid.replaceChildren.apply(grid, clusters.map(function (c) {
              var card = el("div", "card cluster");
              card.dataset.cluster = c.prefix;
              card.appendChild(el("h3", "", c.prefix));
              card.appendChild(el("div", "meta", "leader " + (c.leader || "none") + " \\u00b7 epoch " + c.epoch +
                " \\u00b7 " + c.agents.filter(function (a) { return a.connected; }).length + "/" + c.agents.length + " connected"));
              var p = progress[c.prefix];
              if (p) card.appendChild(bar(p.counts));
              var table = el("table");
              var head = el("tr");
              ["agent", "role", "rollout", "main", "upgrader", "address"].forEach(function (h) { head.appendChild(el("th", "", h)); });
              table.appendChild(head);
              c.agents.forEach(function (a) {
                var row = el("tr", a.role === "leader" ? "leader" : "");
                row.dataset.agent = a.id;
                var name = el("td");
                name.appendChild(el("span", a.connected ? "dot up" : "dot"));
                name.appendChild(document.createTextNode(visible(a.id)));
                row.appendChild(name);
                row.appendChild(el("td", "", a.role));
                var state = el("td");
                if (a.rollout_state) state.appendChild(pill(a.rollout_state));
                row.appendChild(state);
                row.appendChild(el("td", "version-main", a.main_version));
                row.appendChild(el("td", "version-upgrader", a.upgrader_version));
                row.appendChild(el("td", "muted", a.address));
                table.appendChild(row);
              });
              card.appendChild(table);
              return card;
            }));
          }
          function renderEvents(events) {
            var list = document.getElementById("events");
            if (!events.length) {
              list.replaceChildren(el("li", "muted", "No events yet."));
              return;
            }
            list.replaceChildren.apply(list, events.slice().reverse().map(function (e) {
              var item = el("li");
              item.dataset.event = String(e.id);
              item.appendChild(el("span", "muted", e.at));
              item.appendChild(el("span", "", e.actor));
              item.appendChild(el("span", "", e.kind));
              item.appendChild(el("span", "detail", e.detail));
              return item;
            }));
          }
          function setStatus(ok, text) {
            var node = document.getElementById("status");
            node.className = ok ? "status" : "status error";
            node.textContent = visible(text);
          }
          function refresh() {
            fetch("status.json", { cache: "no-store", credentials: "omit" })
              .then(function (response) {
                if (!response.ok) throw new Error("HTTP " + response.status);
                return response.json();
              })
              .then(function (s) {
                renderRollouts(s.rollouts);
                renderClusters(s.clusters, s.rollouts);
                renderEvents(s.events);
                setStatus(true, "updated " + s.generated_at + " \\u00b7 every " + (REFRESH_MS / 1000) + " s");
                document.body.dataset.generatedAt = s.generated_at;
              })
              .catch(function (error) {
                setStatus(false, "cannot reach the coordinator (" + error.message + "); retrying");
              })
              .then(function () { setTimeout(refresh, REFRESH_MS); });
          }
          refresh();
        })();
        """

    static let html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Cascade fleet</title>
        <style>\(style)</style>
        </head>
        <body>
        <header><h1>Cascade fleet</h1><span id="status" class="status">loading&hellip;</span></header>
        <main>
        <section><h2>Rollout</h2><div id="rollout-list"><p class="muted">Loading&hellip;</p></div></section>
        <section><h2>Clusters</h2><div id="clusters" class="grid"></div></section>
        <section><h2>Last events</h2><ol id="events" class="events"></ol></section>
        </main>
        <script>\(script)</script>
        </body>
        </html>

        """

    /// The policy: this script and this style (by hash), fetches to the same origin, nothing else.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src '\(hash(script))'; style-src '\(hash(style))'; connect-src 'self'; img-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// `sha256-<base64>` of an inline element's text, as CSP matches it.
    static func hash(_ text: String) -> String {
        "sha256-" + Data(SHA256.hash(Array(text.utf8)).bytes).base64EncodedString()
    }
}
