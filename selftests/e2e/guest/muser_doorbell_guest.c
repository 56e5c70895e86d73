// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side driver for samples/msix-doorbell, loaded in the nested guest
 * of the end-to-end tests: enables MSI-X, rings the doorbell of every
 * vector @rings times through the mmapped doorbell page and waits for each
 * interrupt. Counts show in /proc/interrupts ("muser-doorbell") and in the
 * kernel log ("vector N: M interrupts").
 *
 * BAR0 of the device: 0x000 magic "MUSR" (trapped), 0x004 vector count
 * (trapped), 0x1000.. doorbell page (device memory): writing V + 1 to the
 * dword at 0x1000 + 4 * V asks for an interrupt on vector V.
 */
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/wait.h>

#define DOORBELL_MAGIC		0x5253554d	/* "MUSR" */
#define DOORBELL_REG_MAGIC	0x000
#define DOORBELL_REG_NVEC	0x004
#define DOORBELL_PAGE		0x1000

static unsigned int rings = 3;
module_param(rings, uint, 0444);
MODULE_PARM_DESC(rings, "Doorbell rings per vector at probe (default 3)");

struct doorbell {
	void __iomem *bar;
	unsigned int nvec;
	atomic_t *count;
	wait_queue_head_t wq;
};

struct doorbell_vec {
	struct doorbell *db;
	unsigned int vec;
};

static irqreturn_t doorbell_irq(int irq, void *arg)
{
	struct doorbell_vec *v = arg;

	atomic_inc(&v->db->count[v->vec]);
	wake_up(&v->db->wq);
	return IRQ_HANDLED;
}

static int doorbell_ring_all(struct pci_dev *pdev, struct doorbell *db)
{
	unsigned int v, r;

	for (v = 0; v < db->nvec; v++) {
		for (r = 0; r < rings; r++) {
			iowrite32(v + 1, db->bar + DOORBELL_PAGE + 4 * v);
			if (!wait_event_timeout(db->wq,
						atomic_read(&db->count[v]) > r,
						10 * HZ)) {
				dev_err(&pdev->dev, "vector %u: no interrupt for ring %u\n",
					v, r);
				return -ETIMEDOUT;
			}
		}
		dev_info(&pdev->dev, "vector %u: %d interrupts\n", v,
			 atomic_read(&db->count[v]));
	}
	return 0;
}

static int doorbell_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct doorbell_vec *vecs;
	struct doorbell *db;
	unsigned int v;
	int ret;

	db = devm_kzalloc(&pdev->dev, sizeof(*db), GFP_KERNEL);
	if (!db)
		return -ENOMEM;
	init_waitqueue_head(&db->wq);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	/* MSI-X messages are memory writes by the device. */
	pci_set_master(pdev);
	ret = pcim_iomap_regions(pdev, BIT(0), "muser-doorbell");
	if (ret)
		return ret;
	db->bar = pcim_iomap_table(pdev)[0];
	if (ioread32(db->bar + DOORBELL_REG_MAGIC) != DOORBELL_MAGIC) {
		dev_err(&pdev->dev, "bad magic\n");
		return -ENODEV;
	}
	db->nvec = ioread32(db->bar + DOORBELL_REG_NVEC);
	if (!db->nvec || db->nvec > 64)
		return -ENODEV;

	ret = pci_alloc_irq_vectors(pdev, db->nvec, db->nvec, PCI_IRQ_MSIX);
	if (ret < 0)
		return ret;
	db->count = devm_kcalloc(&pdev->dev, db->nvec, sizeof(*db->count),
				 GFP_KERNEL);
	vecs = devm_kcalloc(&pdev->dev, db->nvec, sizeof(*vecs), GFP_KERNEL);
	if (!db->count || !vecs) {
		ret = -ENOMEM;
		goto err_free_vectors;
	}
	for (v = 0; v < db->nvec; v++) {
		vecs[v].db = db;
		vecs[v].vec = v;
		ret = request_irq(pci_irq_vector(pdev, v), doorbell_irq, 0,
				  "muser-doorbell", &vecs[v]);
		if (ret)
			goto err_free_irqs;
	}
	pci_set_drvdata(pdev, vecs);
	dev_info(&pdev->dev, "MSI-X with %u vectors\n", db->nvec);

	/* A missing interrupt is reported, not fatal: /proc/interrupts tells. */
	doorbell_ring_all(pdev, db);
	return 0;

err_free_irqs:
	while (v--)
		free_irq(pci_irq_vector(pdev, v), &vecs[v]);
err_free_vectors:
	pci_free_irq_vectors(pdev);
	return ret;
}

static void doorbell_remove(struct pci_dev *pdev)
{
	struct doorbell_vec *vecs = pci_get_drvdata(pdev);
	unsigned int v;

	for (v = 0; v < vecs[0].db->nvec; v++)
		free_irq(pci_irq_vector(pdev, v), &vecs[v]);
	pci_free_irq_vectors(pdev);
}

static const struct pci_device_id doorbell_ids[] = {
	{ PCI_DEVICE(0x4e58, 0x0001) },	/* Nutanix: muser doorbell sample */
	{ }
};
MODULE_DEVICE_TABLE(pci, doorbell_ids);

static struct pci_driver doorbell_driver = {
	.name = "muser-doorbell",
	.id_table = doorbell_ids,
	.probe = doorbell_probe,
	.remove = doorbell_remove,
};
module_pci_driver(doorbell_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Guest driver for the muser MSI-X doorbell sample");
