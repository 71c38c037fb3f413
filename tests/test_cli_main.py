import subprocess
import sys

from maskstudio.cli.main import main


def test_help_exits_zero(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    assert "maskstudio" in capsys.readouterr().out


def test_console_script_module_runs():
    r = subprocess.run([sys.executable, "-m", "maskstudio", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "maskstudio" in r.stdout
