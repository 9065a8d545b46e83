"""Trainer on the GPU: the book's lists, the same seed the same bits, the
CPU's book loop, Ctrl-C between steps."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpu_net


def small(mnist, n=1000):
    (x, t), (xt, tt) = mnist
    return x[:n], t[:n], xt[:500], tt[:500]


def test_trainer_fills_the_books_lists(gpu, mnist, capsys):
    net = gpu_net.TwoLayerNet(784, 50, 10, device=gpu, seed=1)
    w1 = net.params["W1"]
    tr = gpu_net.Trainer(net, *small(mnist), epochs=3, mini_batch_size=100, optimizer="sgd",
                         optimizer_param={"lr": 0.1}, evaluate_sample_num_per_epoch=200, seed=1)
    tr.train()
    assert len(tr.train_loss_list) == 30 and len(tr.train_acc_list) == len(tr.test_acc_list) == 3
    assert tr.train_loss_list[-1] < tr.train_loss_list[0]
    assert net.params["W1"] is w1 and not np.array_equal(w1, gpu_net.TwoLayerNet(784, 50, 10, seed=1).params["W1"])
    out = capsys.readouterr().out
    assert out.count("train loss:") == 30 and "=== epoch:3, train acc:" in out
    assert "=============== Final Test Accuracy ===============" in out
    # The lists' accuracies are the network's own on those images.
    x, t, xt, tt = small(mnist)
    assert tr.test_acc_list[-1] == net.accuracy(xt[:200], tt[:200])


def test_the_same_seed_repeats_the_run(gpu, mnist):
    def run():
        net = gpu_net.MultiLayerNetExtend(784, [40, 30], 10, use_batchnorm=True, use_dropout=True,
                                          dropout_ration=0.2, device=gpu, seed=4)
        tr = gpu_net.Trainer(net, *small(mnist), epochs=2.5, optimizer="Adam",
                             optimizer_param={"lr": 0.001}, verbose=False, seed=4)
        tr.train()
        return net, tr

    (a, ta), (b, tb) = run(), run()
    assert len(ta.train_loss_list) == 25 and len(ta.test_acc_list) == 2  # the half epoch is not evaluated
    assert ta.train_loss_list == tb.train_loss_list
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    assert np.array_equal(a._core.running, b._core.running) and a._core.running.any()


def test_trainer_on_the_cpu_runs_the_books_loop(mnist):
    net = gpu_net.TwoLayerNet(784, 20, 10, device="cpu", seed=1)
    tr = gpu_net.Trainer(net, *small(mnist, 200), epochs=2, mini_batch_size=50,
                         optimizer_param={"lr": 0.1}, verbose=False, seed=1)
    tr.train()
    assert len(tr.train_loss_list) == 8 and len(tr.test_acc_list) == 2


def test_trainer_refuses_what_it_cannot_train(gpu, mnist):
    net = gpu_net.TwoLayerNet(784, 50, 10, device=gpu, seed=1)
    x, t, xt, tt = small(mnist)
    with pytest.raises(ValueError, match="x_train: the Trainer keeps images on the GPU as bytes"):
        gpu_net.Trainer(net, x * 0.5 + 0.001, t, xt, tt).train()
    with pytest.raises(ValueError, match="optimizer='lbfgs'"):
        gpu_net.Trainer(net, x, t, xt, tt, optimizer="lbfgs")
    with pytest.raises(ValueError, match="optimizer_param"):
        gpu_net.Trainer(net, x, t, xt, tt, optimizer="adam", optimizer_param={"lr": 0.1, "momentum": 0.9})
    with pytest.raises(ValueError, match="mini_batch_size is 5000"):
        gpu_net.Trainer(net, x, t, xt, tt, mini_batch_size=5000)
    with pytest.raises(TypeError, match="network must be"):
        gpu_net.Trainer(object(), x, t, xt, tt)


def test_ctrl_c_stops_the_trainer_and_keeps_the_kernel(gpu, tmp_path):
    """SIGINT during train(): KeyboardInterrupt between steps, the params
    trained so far kept, and the process goes on."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np, gpu_net
        (x, t), (xt, tt) = gpu_net.load_mnist()
        net = gpu_net.TwoLayerNet(784, 50, 10, device="gpu", seed=1)
        first = net.params["W1"].copy()
        tr = gpu_net.Trainer(net, x, t, xt, tt, epochs=500, verbose=False, seed=1)
        tr._epoch = (lambda f: lambda *a: (f(*a), print("EPOCH", flush=True)))(tr._epoch)
        try:
            tr.train()
            print("FINISHED")
        except KeyboardInterrupt:
            print("INTERRUPTED", len(tr.train_loss_list), not np.array_equal(first, net.params["W1"]))
        print("ALIVE", net.accuracy(xt[:100], tt[:100]) > 0.5, flush=True)
    """))
    # SIGINT's default restored in the child: a shell's background job (a
    # CI run started with `&`) ignores it, and Python then installs no
    # KeyboardInterrupt handler.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd(), preexec_fn=restore)
    assert p.stdout.readline().strip() == "EPOCH"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    lines = out.split("\n")
    interrupted = [l for l in lines if l.startswith("INTERRUPTED")]
    assert interrupted and interrupted[0].endswith("True"), out
    assert "ALIVE True" in out and p.returncode == 0


def test_the_trainer_gives_the_clis_bits(gpu, tmp_path):
    """The same seed and settings as `gpu-net train`: the same parameters, bit for bit."""
    from test_files import cli

    path = tmp_path / "cli.safetensors"
    subprocess.run([cli(), "train", "--iters", "1200", "--seed", "3", "--save", str(path)], capture_output=True, check=True)
    (x, t), (xt, tt) = gpu_net.load_mnist()
    net = gpu_net.TwoLayerNet(784, 50, 10, device=gpu, seed=3)
    gpu_net.Trainer(net, x, t, xt, tt, epochs=2, optimizer_param={"lr": 0.1}, verbose=False, seed=3).train()
    theirs = gpu_net.load(path)
    for k in net.params:
        assert np.array_equal(net.params[k], theirs.params[k]), k


def test_a_trainer_starts_its_optimizer_afresh(gpu, mnist):
    """Adam from step 1 whatever the network did before: a network that
    already took gradient steps trains as a fresh one with the same weights."""
    def trained(warm):
        net = gpu_net.TwoLayerNet(784, 30, 10, device=gpu, seed=8)
        if warm:
            for _ in range(3):
                net.gradient(mnist[0][0][:10], mnist[0][1][:10])  # steps that change nothing
        gpu_net.Trainer(net, *small(mnist), epochs=1, optimizer="adam", optimizer_param={"lr": 0.001},
                        verbose=False, seed=8).train()
        return net

    a, b = trained(False), trained(True)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    assert b._core.steps == 3 + 10


@pytest.mark.parametrize("device,lr", [("auto", 1e30), ("cpu", 1e300)])
def test_a_diverging_trainer_stops_as_the_cli_does(mnist, device, lr):
    """A loss that stops being a number ends train() with FloatingPointError
    naming the learning rate, as `gpu-net train` exits 1, instead of
    finishing with NaN parameters."""
    net = gpu_net.TwoLayerNet(784, 20, 10, device=device, seed=1)
    tr = gpu_net.Trainer(net, *small(mnist, 200), epochs=2, mini_batch_size=50,
                         optimizer_param={"lr": lr}, verbose=False, seed=1)
    with pytest.raises(FloatingPointError, match="diverged at learning rate"):
        tr.train()


def test_an_interrupt_as_an_epoch_ends_keeps_the_books_counts(gpu, mnist):
    """A KeyboardInterrupt that lands as the epoch's report begins (before
    any of its lines run) still leaves the lists and counters at the steps
    the network took: the losses of an uninterrupted run of that length."""
    def trainer(epochs):
        net = gpu_net.TwoLayerNet(784, 30, 10, device=gpu, seed=2)
        return net, gpu_net.Trainer(net, *small(mnist), epochs=epochs, optimizer_param={"lr": 0.1},
                                    evaluate_sample_num_per_epoch=100, verbose=False, seed=2)

    net, tr = trainer(5)
    report = tr._epoch

    def interrupted_at_two(epoch, losses, accuracies):
        if epoch == 2:
            raise KeyboardInterrupt
        report(epoch, losses, accuracies)

    tr._epoch = interrupted_at_two
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    assert net._core.steps == tr.current_iter == len(tr.train_loss_list) == 20
    assert tr.current_epoch == len(tr.train_acc_list) == len(tr.test_acc_list) == 2
    net2, tr2 = trainer(2)
    tr2.train()
    assert tr.train_loss_list == tr2.train_loss_list and tr.test_acc_list == tr2.test_acc_list
    for k in net.params:
        assert np.array_equal(net.params[k], net2.params[k]), k
