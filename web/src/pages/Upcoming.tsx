import { Link } from "react-router";
import type { Section } from "../sections";
import { useTitle } from "../lib/hooks";

/** Upcoming holds a section's place until its capability's API exists. */
export function Upcoming({ section }: { section: Section }) {
  useTitle(section.title);
  return (
    <div className="page">
      <h1>{section.title}</h1>
      <p className="lede">{section.summary}</p>
      <p className="muted">
        This view lights up when paved's server offers {section.waitsFor}. Until then, follow your pipelines on the{" "}
        <Link to="/runs">Runs</Link> page.
      </p>
    </div>
  );
}

export function NotFound() {
  useTitle("Not found");
  return (
    <div className="page">
      <h1>Not found</h1>
      <p>
        Nothing lives at this address. Go to the <Link to="/runs">runs</Link>.
      </p>
    </div>
  );
}
