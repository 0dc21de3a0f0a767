// The signed-in user (GET /api/v1/me), whom promotions and approvals act as: the server
// takes the user from the session cookie, never from what the page says.
import { createContext, useContext } from "react";
import type { Me } from "../api";

export interface Session {
  me: Me;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

/** useSession is the session, or null outside of one (the login page, tests). */
export const useSession = () => useContext(SessionContext);

/** useUser is the signed-in user's name ("" when there is none). */
export const useUser = (): string => useSession()?.me.user ?? "";
