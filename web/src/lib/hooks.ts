import { useEffect, useState } from "react";

/** useNow ticks every `ms` while `active`, so live durations advance without new data. */
export function useNow(ms: number, active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}

/** useWidth reports an element's width, for layouts that change shape on a phone. */
export function useWidth(el: HTMLElement | null): number {
  const [w, setW] = useState(() => el?.clientWidth ?? window.innerWidth);
  useEffect(() => {
    if (!el) return;
    setW(el.clientWidth);
    const ro = new ResizeObserver(() => setW(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, [el]);
  return w;
}

/** useTitle sets the document title, which screen readers announce on navigation. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · paved` : "paved";
  }, [title]);
}

/** useVisible says whether the tab is visible. Hidden tabs drop their live streams: a browser
 * allows six connections to one server, and every open run page would otherwise hold two. */
export function useVisible(): boolean {
  const [visible, setVisible] = useState(() => document.visibilityState !== "hidden");
  useEffect(() => {
    const on = () => setVisible(document.visibilityState !== "hidden");
    document.addEventListener("visibilitychange", on);
    return () => document.removeEventListener("visibilitychange", on);
  }, []);
  return visible;
}
