"""The page's inline style and script: no font, library or image from anywhere else.

The script sorts a table when a header is clicked (or Enter pressed on it): numbers by value
when every non-missing cell of the column is one (a cell's ``data-sort`` holds its exact
value), otherwise text in natural order; missing cells ("-") stay last either way. Typing in a
table's box keeps the rows holding every typed word (in their text or provenance).
"""

from __future__ import annotations

STYLE = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--head:#f3f5f7;--zebra:#fafbfc;--link:#0a58ca}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;
color:var(--fg);background:#fff}
header,main{max-width:1800px;margin:0 auto;padding:0 20px}
h1{font-size:24px;margin:18px 0 4px}
h2{font-size:19px;margin:28px 0 8px;padding-top:8px;border-top:2px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
p{margin:6px 0;max-width:110ch;color:var(--muted)}
ul{margin:4px 0 8px;color:var(--muted)}
nav ol{display:flex;flex-wrap:wrap;gap:4px 22px;padding-left:0;margin:8px 0 0;
list-style-position:inside}
a{color:var(--link)}
.tablebox{margin:8px 0 16px}
.filter{width:28em;max-width:100%;padding:4px 8px;border:1px solid var(--line);border-radius:4px;
font:inherit}
.count{color:var(--muted);font-size:12px;margin-left:6px}
.scroll{overflow-x:auto;margin-top:6px;border:1px solid var(--line);border-radius:4px}
table.data{border-collapse:collapse;width:100%;font-size:12.5px}
caption{text-align:left;padding:4px 8px;color:var(--muted)}
th,td{padding:3px 7px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;
white-space:nowrap}
th{background:var(--head);position:sticky;top:0;cursor:pointer;user-select:none;
white-space:normal;vertical-align:bottom;min-width:4em}
td.wrap{white-space:normal;min-width:14em;max-width:24em}
th:hover{background:#e6eaef}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
tbody tr:nth-child(even){background:var(--zebra)}
tbody tr:hover{background:#eef4ff}
.num{text-align:right;font-variant-numeric:tabular-nums}
td[title]:not([title=""]){text-decoration:underline dotted #9aa4ae}
tr:target,td:target{background:#fff3bf}
figure{margin:10px 0 18px}
figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:13px}
.figs{display:flex;flex-wrap:wrap;gap:8px}
.empty{font-style:italic}
"""

SCRIPT = """
(function(){
"use strict";
function key(td){return td.hasAttribute("data-sort")?td.getAttribute("data-sort"):td.textContent.trim();}
function missing(k){return k===""||k==="-";}
var collator=new Intl.Collator("en",{numeric:true,sensitivity:"base"});
function sortBy(table,th,col){
  var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  var asc=th.getAttribute("aria-sort")!=="ascending";
  var keys=rows.map(function(r){return key(r.cells[col]);});
  var numeric=keys.every(function(k){return missing(k)||isFinite(Number(k));});
  var order=rows.map(function(r,i){return i;});
  order.sort(function(a,b){
    var ka=keys[a],kb=keys[b];
    if(missing(ka)||missing(kb)){return (missing(ka)-missing(kb))||(a-b);}
    var c=numeric?Number(ka)-Number(kb):collator.compare(ka,kb);
    return (asc?c:-c)||(a-b);
  });
  Array.prototype.forEach.call(th.parentNode.cells,function(h){h.removeAttribute("aria-sort");});
  th.setAttribute("aria-sort",asc?"ascending":"descending");
  order.forEach(function(i){body.appendChild(rows[i]);});
}
function filter(box,table,count){
  var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean),shown=0;
  Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
    var text=(r.textContent+" "+r.title).toLowerCase();
    var ok=words.every(function(w){return text.indexOf(w)>=0;});
    r.hidden=!ok;if(ok){shown++;}
  });
  count.textContent=shown+" of "+table.tBodies[0].rows.length+" rows";
}
Array.prototype.forEach.call(document.querySelectorAll(".tablebox"),function(box){
  var table=box.querySelector("table"),input=box.querySelector(".filter");
  var count=box.querySelector(".count");
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    th.addEventListener("click",function(){sortBy(table,th,col);});
    th.addEventListener("keydown",function(e){if(e.key==="Enter"){sortBy(table,th,col);}});
  });
  input.addEventListener("input",function(){filter(input,table,count);});
  filter(input,table,count);
});
})();
"""
