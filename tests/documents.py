"""Test documents made the way real ones are: Japanese PDFs (reportlab's built-in CID fonts), Word, HTML.

The PDF reproduces what government PDFs have: a running header and a page footer on every page,
line numbers at the right margin restarting on each page, a heading hierarchy, a footnote at the
foot of the page its mark is on, a table, and a sentence running over a page break.
Each fact sits on a known page so tests can check the pages citations name.
"""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

GOTHIC, MINCHO = "HeiseiKakuGo-W5", "HeiseiMin-W3"
for _font in (GOTHIC, MINCHO):
    pdfmetrics.registerFont(UnicodeCIDFont(_font))

HEADER = "生成AI政策の中間報告（試験用資料）"
FOOTER = "- {page} -"
LINE_CHARS = 38  # characters per body line before the hard wrap
TITLE = "生成AIの利活用と安全性に関する中間報告"

# (kind, text) per page; "h" headings (bold font), "p" paragraphs (hard-wrapped), "t" table rows, "n" footnotes
PAGES: list[list[tuple[str, str]]] = [
    [
        ("h", TITLE),
        ("h", "第1章 総論"),
        ("h", "1. 目的"),
        (
            "p",
            "本報告は、生成AIの利活用と安全性の確保を両立させるための政策の方向性を示すものである。"
            "生成AIにはハルシネーション 1が生じるおそれがあり、利用者への注意喚起が求められる。",
        ),
        ("h", "2. 基本的な考え方"),
        (
            "p",
            "政府は、イノベーションの促進とリスクへの対応を一体として進める。特に中小企業における導入の"
            "遅れが課題であり、相談窓口の設置や専門人材の派遣を通じて支援を行う。あわせて、教育機関と連携し、"
            "生成AIを安全に使いこなすための研修を全国で実施するとともに、その成果を毎年度公表し、次年度の",
        ),
        ("n", "1 生成AIが事実と異なる内容をもっともらしく出力する現象をいう。"),
    ],
    [
        ("p", "施策の改善に活かすこととする。"),
        ("h", "3. 推進体制"),
        (
            "p",
            "内閣府に生成AI安全評価センターを2026年4月に設置し、評価手法の開発と国際連携の窓口を担わせる。"
            "センターの所長は内閣総理大臣が任命する。",
        ),
        ("t", "区分\t担当府省\t主な施策"),
        ("t", "研究開発\t文部科学省\t基盤モデルの開発支援"),
        ("t", "産業利用\t経済産業省\t中小企業への導入補助"),
        ("t", "安全性評価\t内閣府\t評価センターの運営"),
    ],
    [
        ("h", "第2章 具体的な施策"),
        ("h", "（1）計算資源の整備"),
        (
            "p",
            "計算資源の整備には、2027年度までに総額800億円を充てる。国内の大学や研究機関が共同で利用できる"
            "計算基盤を構築し、利用料の一部を国が負担する。",
        ),
        ("h", "（2）人材の育成"),
        (
            "p",
            "高度なAI人材を年間5000人育成することを目標とし、大学院での専門課程の新設を支援する。",
        ),
    ],
]


def _wrap(text: str, width: int = LINE_CHARS) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)]


def write_policy_pdf(path: Path, encrypt: str | None = None) -> Path:
    """The three-page policy PDF described above (optionally encrypted with user password `encrypt`)."""
    width, height = A4
    encryption = StandardEncryption(encrypt) if encrypt else None
    pdf = canvas.Canvas(str(path), pagesize=A4, encrypt=encryption, invariant=True)  # the same bytes every time
    for number, page in enumerate(PAGES, 1):
        pdf.setFont(GOTHIC, 8)
        pdf.drawString(60, height - 36, HEADER)
        y, line_no = height - 80, 0
        notes: list[str] = []
        for kind, text in page:
            if kind == "n":
                notes.append(text)
                continue
            if kind == "t":
                pdf.setFont(MINCHO, 9.5)
                for x, cell in zip((70, 200, 330), text.split("\t")):
                    pdf.drawString(x, y, cell)
                y -= 16
                continue
            pdf.setFont(GOTHIC if kind == "h" else MINCHO, 11 if kind == "h" else 10.5)
            if kind == "h":
                y -= 6
            for line in _wrap(text) if kind == "p" else [text]:
                line_no += 1
                pdf.drawString(60, y, line)
                pdf.setFont(MINCHO, 8)
                pdf.drawRightString(width - 40, y, str(line_no))
                pdf.setFont(GOTHIC if kind == "h" else MINCHO, 11 if kind == "h" else 10.5)
                y -= 18
        pdf.setFont(MINCHO, 8)
        for i, note in enumerate(notes):
            pdf.drawString(60, 90 - i * 12, note)
        pdf.drawCentredString(width / 2, 40, FOOTER.format(page=number))
        pdf.showPage()
    pdf.save()
    return path


def write_image_only_pdf(path: Path) -> Path:
    """A 'scan': one page holding only a picture, no text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader

    image = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 380, 180), outline="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.drawImage(ImageReader(io.BytesIO(buffer.getvalue())), 100, 400, width=400, height=200)
    pdf.showPage()
    pdf.save()
    return path


def write_truncated_pdf(path: Path, source: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_policy_docx(path: Path) -> Path:
    """A Word document with a heading hierarchy (Heading 1/2 styles), paragraphs and a table."""
    import docx

    document = docx.Document()
    document.add_heading("地域DX推進計画", level=0)
    document.add_heading("第1章 計画の概要", level=1)
    document.add_heading("1. 計画期間", level=2)
    document.add_paragraph("本計画の期間は2025年度から2029年度までの5年間とする。")
    document.add_heading("2. 重点分野", level=2)
    document.add_paragraph("重点分野は、行政手続のオンライン化と地域交通の最適化である。")
    document.add_heading("第2章 推進体制", level=1)
    document.add_paragraph("推進本部の本部長は知事が務め、年2回の進捗確認を行う。")
    table = document.add_table(rows=3, cols=3)
    rows = [
        ("施策", "担当課", "目標"),
        ("電子申請", "情報政策課", "対象手続の9割"),
        ("デマンド交通", "交通政策課", "全市町村で運行"),
    ]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.save(str(path))
    return path


POLICY_HTML = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>防災DXの取組 | 架空市</title>
<style>body { font-family: sans-serif; } .menu { color: red; }</style>
<script>var tracking = "スクリプトの文字列は本文ではない";</script></head>
<body>
<header><p>架空市 公式ウェブサイト</p></header>
<nav><ul><li>ホーム</li><li>くらし</li><li>サイトマップ（ナビゲーション）</li></ul></nav>
<main>
<h1>防災DXの取組</h1>
<h2>避難情報の配信</h2>
<p>架空市は、避難情報を<strong>スマートフォンのアプリ</strong>で配信する。
配信は2025年10月に開始した。</p>
<h3>対象地域</h3>
<ul><li>沿岸部の全地区</li><li>土砂災害警戒区域</li></ul>
<h2>備蓄の管理</h2>
<table><tr><th>品目</th><th>目標</th></tr><tr><td>飲料水</td><td>3日分</td></tr></table>
</main>
<aside>関連リンク（サイドバー）</aside>
<footer>Copyright 架空市</footer>
<script>document.write("フッターのスクリプト");</script>
</body></html>
"""


def write_policy_html(path: Path) -> Path:
    path.write_text(POLICY_HTML, encoding="utf-8")
    return path
