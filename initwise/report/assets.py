"""The HTML report's inline stylesheet and script (no external resources, no network)."""

from __future__ import annotations

__all__ = ["CSP", "CSS", "SCRIPT"]

# Nothing may be fetched: styles and the copy script are inline, images are inline SVG.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")

CSS = """
:root{--fg:#1d2433;--muted:#5b6475;--bg:#f6f7f9;--card:#fff;--line:#dde1e7;--err:#c0392b;
--warn:#b7791f;--info:#2b6cb0;--ok:#2f855a;--code:#f1f3f6;--accent:#2e86ab}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#1d2433;color:#fff;padding:18px 16px 14px}
header h1{margin:0;font-size:1.35rem;font-weight:650}
header p{margin:4px 0 0;color:#c9d1de;font-size:.85rem}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
overflow-x:auto;white-space:nowrap;padding:0 8px}
nav a{display:inline-block;padding:10px 9px;color:var(--accent);text-decoration:none;
font-size:.9rem}
nav a:hover{text-decoration:underline}
main{max-width:1120px;margin:0 auto;padding:12px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:14px 16px;margin:14px 0}
section>h2{margin:0 0 10px;font-size:1.15rem}
h3{font-size:1rem;margin:14px 0 6px}
.verdict{border-left:6px solid var(--ok);padding:10px 14px;background:#f0fff4;border-radius:6px;
font-size:1.05rem;font-weight:600}
.verdict.error{border-color:var(--err);background:#fff5f5}
.verdict.warning{border-color:var(--warn);background:#fffaf0}
.muted{color:var(--muted);fill:var(--muted)}
.small{font-size:.85rem}
.tw{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:6px 0}
table{border-collapse:collapse;font-size:.86rem;min-width:100%}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#f3f5f8;font-weight:600}
th:first-child,td:first-child{text-align:left}
td.l,th.l{text-align:left}
td.good{color:var(--ok);font-weight:600}td.bad{color:var(--err);font-weight:600}
.finding{border:1px solid var(--line);border-left:5px solid var(--info);border-radius:8px;
padding:10px 12px;margin:10px 0}
.finding.error{border-left-color:var(--err)}.finding.warning{border-left-color:var(--warn)}
.finding .head{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:baseline}
.badge{font-size:.72rem;font-weight:700;text-transform:uppercase;letter-spacing:.04em;
padding:2px 7px;border-radius:10px;color:#fff;background:var(--info)}
.badge.error{background:var(--err)}.badge.warning{background:var(--warn)}
.badge.ok{background:var(--ok)}
.finding code.check{font-weight:600}
.finding p{margin:6px 0}
.codebox{position:relative;margin:8px 0 2px}
pre{background:var(--code);border-radius:6px;padding:10px 12px;margin:0;overflow-x:auto;
font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.codebox pre{padding-right:64px}
button.copy{position:absolute;top:6px;right:6px;font-size:.75rem;padding:3px 9px;border:1px solid
var(--line);border-radius:5px;background:#fff;cursor:pointer}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:12px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:6px;background:#fff}
figcaption{font-size:.8rem;color:var(--muted);padding:2px 6px 4px}
svg.chart{width:100%;height:auto;display:block;font-family:system-ui,sans-serif}
svg .ct{font-size:14px;font-weight:600;text-anchor:middle;fill:#1d2433}
svg .al{font-size:12px;text-anchor:middle;fill:#5b6475}
svg .tk{font-size:11px;fill:#5b6475}
svg .lg{font-size:12px;fill:#1d2433}
svg .pl{font-size:10px;fill:#1d2433}
svg .gl{stroke:#e6e9ee;stroke-width:1}
svg .frame{fill:none;stroke:#c5cbd4}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:6px 0;
font-size:.9rem}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;font-variant-numeric:tabular-nums}
.kvg{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,240px),1fr));
gap:2px 22px;margin:8px 0;font-size:.9rem}
.kvg div{display:flex;justify-content:space-between;gap:10px;border-bottom:1px dotted var(--line);
padding:2px 0}
.kvg .k{color:var(--muted)}.kvg .v{font-variant-numeric:tabular-nums;text-align:right}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
footer{text-align:center;color:var(--muted);font-size:.8rem;padding:10px 0 30px}
@media (max-width:600px){body{font-size:14px}main{padding:6px}section{padding:12px 10px;
margin:10px 0}header h1{font-size:1.15rem}th,td{padding:4px 6px}
svg .tk,svg .al{font-size:15px}svg .ct{font-size:18px}svg .lg{font-size:14px}svg .pl{font-size:13px}
figure{padding:2px}.summary th,.summary td{white-space:normal;padding:4px 5px}}
@media print{nav{display:none}section{break-inside:avoid}}
"""

SCRIPT = """
(function(){
  function fallback(text, done){
    var ta=document.createElement('textarea');ta.value=text;ta.setAttribute('readonly','');
    ta.style.position='absolute';ta.style.left='-9999px';document.body.appendChild(ta);
    ta.select();try{document.execCommand('copy');done();}catch(e){}
    document.body.removeChild(ta);
  }
  var buttons=document.querySelectorAll('button.copy');
  for(var i=0;i<buttons.length;i++){
    buttons[i].addEventListener('click',function(ev){
      var b=ev.currentTarget;var code=b.parentNode.querySelector('code').textContent;
      var done=function(){b.textContent='copied';
        setTimeout(function(){b.textContent='copy';},1500);};
      if(navigator.clipboard&&window.isSecureContext){
        navigator.clipboard.writeText(code).then(done,function(){fallback(code,done);});
      }else{fallback(code,done);}
    });
  }
})();
"""
