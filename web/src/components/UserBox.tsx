// UserBox asks for the acting user's name once and keeps it (see lib/user.ts).
import { useState } from "react";

export function UserBox({ user, setUser }: { user: string; setUser: (u: string) => void }) {
  const [draft, setDraft] = useState(user);
  const [editing, setEditing] = useState(!user);
  if (!editing && user) {
    return (
      <p className="userbox">
        Acting as <strong>{user}</strong>{" "}
        <button type="button" onClick={() => setEditing(true)}>
          Change
        </button>{" "}
        <span className="muted">(a stand-in until accounts exist: the server takes the name you give)</span>
      </p>
    );
  }
  return (
    <form
      className="userbox"
      onSubmit={(e) => {
        e.preventDefault();
        if (!draft.trim()) return;
        setUser(draft);
        setEditing(false);
      }}
    >
      <label htmlFor="acting-user">Your name</label>{" "}
      <input id="acting-user" value={draft} onChange={(e) => setDraft(e.target.value)} autoComplete="username" />{" "}
      <button type="submit">Use this name</button>{" "}
      <span className="muted">
        Sent as <code>X-Paved-User</code> with promotions and approvals; a stand-in until accounts exist, kept in this
        browser.
      </span>
    </form>
  );
}
