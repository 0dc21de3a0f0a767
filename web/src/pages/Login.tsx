// Login is shown whenever the API says 401: no session, or it ended. The password goes to
// POST /api/v1/login, which sets an HttpOnly cookie; the page keeps no secret.
import { useEffect, useState } from "react";
import { ApiError, login, loginOptions, oidcLoginURL } from "../api";
import { useTitle } from "../lib/hooks";

export function Login({ onLogin }: { onLogin: () => void }) {
  useTitle("Log in");
  const [user, setUser] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [sso, setSSO] = useState(false);
  useEffect(() => {
    const ctl = new AbortController();
    loginOptions(ctl.signal).then(
      (o) => setSSO(o.oidc),
      () => setSSO(false), // an older server, or none: password only
    );
    return () => ctl.abort();
  }, []);
  return (
    <main id="main" className="login" tabIndex={-1}>
      <h1>Log in to paved</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError("");
          try {
            await login(user.trim(), password);
            setPassword("");
            onLogin();
          } catch (err) {
            setError(err instanceof ApiError && err.status === 401 ? "Wrong user name or password." : String((err as Error).message));
          } finally {
            setBusy(false);
          }
        }}
      >
        <label htmlFor="login-user">User</label>
        <input id="login-user" value={user} onChange={(e) => setUser(e.target.value)} autoComplete="username" required />
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          type="password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="current-password"
          required
        />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            Log in
          </button>
        </div>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
      {sso && (
        <p className="actions">
          <a href={oidcLoginURL}>
            Sign in with SSO
          </a>
        </p>
      )}
      <p className="muted">
        No account? A server admin makes one with <code>paved user add</code>; <code>paved demo</code> prints the admin&apos;s
        password.
      </p>
    </main>
  );
}
