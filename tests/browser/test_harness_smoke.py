"""The browser harness works: an inline anywidget renders in JupyterLab, a click reaches the kernel."""

from __future__ import annotations

import time

COUNTER_CELL = '''
import anywidget
import traitlets


class Counter(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const btn = document.createElement("button");
      btn.className = "harness-counter-btn";
      const update = () => {
        btn.textContent = `count is ${model.get("count")}`;
        btn.dataset.echo = String(model.get("echo"));
      };
      btn.addEventListener("click", () => {
        model.set("count", model.get("count") + 1);
        model.save_changes();
      });
      model.on("change:count", update);
      model.on("change:echo", update);
      update();
      el.appendChild(btn);
    }
    export default { render };
    """
    count = traitlets.Int(0).tag(sync=True)
    echo = traitlets.Int(-1).tag(sync=True)

    @traitlets.observe("count")
    def _echo(self, change):
        # Set by Python, so the browser sees it only after the kernel has handled the click.
        self.echo = change["new"]


w = Counter()
w
'''

PRINT_CELL = 'print(f"count={w.count}")'
ENV_CELL = 'import os; print("WIRO_HOME=" + os.environ.get("WIRO_HOME", "unset"))'


def test_anywidget_click_reaches_kernel(jupyter_lab, browser_page, lab_env):
    page = browser_page
    start = time.monotonic()
    jupyter_lab.open_notebook(page, [COUNTER_CELL, PRINT_CELL, ENV_CELL], name="harness-smoke.ipynb")
    jupyter_lab.run_all(page)
    assert jupyter_lab.output_text(page, 1).strip() == "count=0"
    assert jupyter_lab.output_text(page, 2).strip() == f"WIRO_HOME={lab_env['WIRO_HOME']}"  # lab_env reaches kernels

    button = jupyter_lab.wait_for(page, ".jp-OutputArea-output .harness-counter-btn")
    assert button.inner_text() == "count is 0"
    button.click()
    jupyter_lab.wait_for(page, ".harness-counter-btn[data-echo='1']")  # the kernel's round trip
    assert button.inner_text() == "count is 1"

    jupyter_lab.run_cell(page, 1)
    assert jupyter_lab.output_text(page, 1).strip() == "count=1"
    assert time.monotonic() - start < 30
