import { NavLink, Navigate, Outlet, Route, Routes } from "react-router";
import { Approvals } from "./pages/Approvals";
import { Builder } from "./pages/Builder";
import { Deployments } from "./pages/Deployments";
import { Insights } from "./pages/Insights";
import { Promotion } from "./pages/Promotion";
import { RunPage } from "./pages/RunPage";
import { RunsList } from "./pages/RunsList";
import { NotFound, Upcoming } from "./pages/Upcoming";
import { sections } from "./sections";

function Shell() {
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <NavLink to="/runs" className="brand" aria-label="paved home">
          paved
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {sections.map((s) => (
              <li key={s.path}>
                <NavLink to={s.path} className={s.ready ? "" : "upcoming"}>
                  {s.title}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}

export function App() {
  return (
    <Routes>
      <Route element={<Shell />}>
        <Route index element={<Navigate to="/runs" replace />} />
        <Route path="runs" element={<RunsList />} />
        <Route path="runs/:id" element={<RunPage />} />
        <Route path="deployments" element={<Deployments />} />
        <Route path="deployments/:env" element={<Deployments />} />
        <Route path="insights" element={<Insights />} />
        <Route path="promotion" element={<Promotion />} />
        <Route path="approvals" element={<Approvals />} />
        <Route path="approvals/:id" element={<Approvals />} />
        <Route path="builder" element={<Builder />} />
        {sections
          .filter((s) => !s.ready)
          .map((s) => (
            <Route key={s.path} path={s.path.slice(1) + "/*"} element={<Upcoming section={s} />} />
          ))}
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
