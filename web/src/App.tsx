import { useCallback, useEffect, useMemo, useState } from "react";
import { NavLink, Navigate, Outlet, Route, Routes } from "react-router";
import { ApiError, getMe, logout, onUnauthorized, type Me } from "./api";
import { SessionContext, useSession } from "./lib/user";
import { Approvals } from "./pages/Approvals";
import { Builder } from "./pages/Builder";
import { Deployments } from "./pages/Deployments";
import { Insights } from "./pages/Insights";
import { Login } from "./pages/Login";
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
        <SignedIn />
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}

function SignedIn() {
  const s = useSession();
  if (!s) return null;
  return (
    <p className="signed-in">
      <span>
        {s.me.user}
        {s.me.admin ? " (server admin)" : ""}
      </span>{" "}
      <button type="button" onClick={s.signOut}>
        Log out
      </button>
    </p>
  );
}

/**
 * App asks the API who the session is; without one (401, now or on any later call) it shows
 * the login page, and the app again once logged in.
 */
export function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined); // undefined: asking
  const [error, setError] = useState("");
  const refresh = useCallback(() => {
    getMe()
      .then((m) => {
        setMe(m);
        setError("");
      })
      .catch((e) => {
        if (e instanceof ApiError && e.status === 401) setMe(null);
        else setError(String((e as Error).message));
      });
  }, []);
  useEffect(() => {
    refresh();
    return onUnauthorized(() => setMe(null));
  }, [refresh]);
  const session = useMemo(
    () => (me ? { me, signOut: () => void logout().finally(() => setMe(null)) } : null),
    [me],
  );
  if (error) {
    return (
      <main id="main" className="login">
        <p role="alert" className="error">
          The API did not answer: {error}
        </p>
      </main>
    );
  }
  if (me === undefined) return null;
  if (me === null) return <Login onLogin={refresh} />;
  return (
    <SessionContext.Provider value={session}>
      <AppRoutes />
    </SessionContext.Provider>
  );
}

function AppRoutes() {
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
