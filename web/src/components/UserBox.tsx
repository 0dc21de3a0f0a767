// UserBox says whom promotions and approvals are made as: the signed-in user.
import { useSession } from "../lib/user";

export function UserBox() {
  const s = useSession();
  if (!s) return null;
  return (
    <p className="userbox">
      Acting as <strong>{s.me.user}</strong>
    </p>
  );
}
