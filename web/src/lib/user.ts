// The acting user for promotions and approvals: a name typed once and kept in localStorage.
// A stand-in until paved has accounts (issue #14): the server takes any name it is given.
import { useCallback, useState } from "react";

const key = "paved.user";

export function useUser(): [string, (u: string) => void] {
  const [user, setUser] = useState(() => {
    try {
      return localStorage.getItem(key) ?? "";
    } catch {
      return "";
    }
  });
  const set = useCallback((u: string) => {
    const v = u.trim();
    try {
      if (v) localStorage.setItem(key, v);
      else localStorage.removeItem(key);
    } catch {
      // private mode: keep it for this page only
    }
    setUser(v);
  }, []);
  return [user, set];
}
