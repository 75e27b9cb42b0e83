/**
 * The dashboard's two static files, served by the broker itself: one small
 * stylesheet (responsive, with visible focus) and one small script (it polls
 * an authorization's status on "Try it"; every page works without it). No
 * font, image or script from any other host.
 *
 * @internal
 */

/** The stylesheet. */
export const css = `:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;--accent:#0b5cad;--bad:#b42318;--ok:#1a7f37;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--panel)}
header .brand{font-weight:600;margin-right:auto}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
nav a[aria-current=page]{font-weight:600;text-decoration:none}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
section{margin-bottom:1.5rem}
.table{overflow-x:auto;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;min-width:32rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--panel);font-weight:600}
tr:last-child td{border-bottom:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.muted{color:var(--muted)}
.status-active,.ok{color:var(--ok)}.status-invalid,.status-lost,.bad{color:var(--bad)}.status-revoked{color:var(--warn)}
form.inline{display:inline}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input,select{font:inherit;padding:.4rem .5rem;border:1px solid var(--line);border-radius:4px;max-width:100%}
button,.button{font:inherit;display:inline-block;padding:.35rem .8rem;border:1px solid var(--accent);border-radius:4px;background:var(--accent);color:#fff;cursor:pointer;text-decoration:none}
button.secondary,.button.secondary{background:var(--bg);color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,.button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.notice{padding:.75rem 1rem;border:1px solid var(--line);border-left:4px solid var(--accent);background:var(--panel);border-radius:4px;margin:1rem 0}
.notice.bad{border-left-color:var(--bad)}
.secret{font-family:ui-monospace,monospace;background:var(--panel);padding:.5rem;border:1px dashed var(--line);overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,26rem),1fr));gap:1rem}
figure{margin:0}
.card{border:1px solid var(--line);border-radius:6px;padding:.75rem}
.card h3{margin:0 0 .5rem;font-size:1rem}
.chart{width:100%;height:auto;max-width:40rem}
.swatch-issued{color:#0b5cad}
.chart .issued{fill:#0b5cad}.chart .failed{fill:#b42318}.chart .axis{stroke:#8c959f}.chart text{font-size:10px;fill:#57606a}
.pager{display:flex;gap:1rem;margin:.5rem 0}
.row{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}
code{font-family:ui-monospace,monospace;overflow-wrap:anywhere}
@media (max-width:40rem){main{padding:.5rem}table{min-width:0}th,td{padding:.3rem}h1{font-size:1.25rem}}
`

/** The script: polls the status of the authorization on "Try it" until it is over. */
export const js = `(function(){
var el=document.querySelector("[data-poll]");if(!el)return;
var url=el.getAttribute("data-poll");var out=el.querySelector("[data-status]");var n=0;
function done(s){return s==="completed"||s==="failed"||s==="expired"||s==="unknown"}
function tick(){fetch(url,{credentials:"same-origin",headers:{accept:"application/json"}}).then(function(r){return r.json()}).then(function(b){
out.textContent=b.status+(b.error?" ("+b.error+")":"");el.setAttribute("data-state",b.status);
if(!done(b.status)&&++n<300)setTimeout(tick,1000)}).catch(function(){if(++n<300)setTimeout(tick,3000)})}
tick()})();
`
