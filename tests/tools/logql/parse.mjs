// Reads a JSON array of LogQL expressions on stdin; writes, for each, whether Grafana's
// LogQL grammar parses it without error nodes, where the first error is, and the label
// names used in stream selectors.
import { parser } from "@grafana/lezer-logql";

const input = await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (chunk) => (data += chunk));
  process.stdin.on("end", () => resolve(data));
});

function check(expr) {
  const tree = parser.parse(expr);
  let error = null;
  const labels = new Set();
  tree.iterate({
    enter(node) {
      if (node.type.isError && error === null) error = node.from;
      if (node.name === "Matcher") {
        const ident = node.node.getChild("Identifier");
        if (ident) labels.add(expr.slice(ident.from, ident.to));
      }
    },
  });
  const top = tree.topNode.firstChild ? tree.topNode.firstChild.name : null;
  return error === null
    ? { ok: true, top, labels: [...labels].sort() }
    : { ok: false, error: `syntax error at ${error}: ${JSON.stringify(expr.slice(error, error + 20))}`, pos: error, labels: [...labels].sort() };
}

process.stdout.write(JSON.stringify(JSON.parse(input).map(check)));
